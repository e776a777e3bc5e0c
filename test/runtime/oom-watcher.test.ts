// The kernel's oom-kill lines name the container's memory cgroup: podvisor reads the container id
// out of them for cgroup v1 (this machine) and v2 (systemd scopes) layouts, and nothing else.
import t from 'tap';
import { oomKilledContainer } from '../../src/runtime/oom-watcher.js';

const ID = 'c1e2fb90a844d5fb98aa68a51e6080119b2e92b930d8bd9bc35213a972219c35';

t.test('the container id of an oom-kill line', async (t) => {
  // As this machine's kernel wrote it (cgroup v1 memory controller, podman's cgroupfs manager).
  const v1 = `[11021.701734] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=libpod-${ID},mems_allowed=0,oom_memcg=/libpod_parent/libpod-${ID},task_memcg=/libpod_parent/libpod-${ID},task=sh,pid=22106,uid=0`;
  t.equal(oomKilledContainer(v1), ID, 'cgroup v1: /libpod_parent/libpod-<id>');
  const v2 = `[ 99.1] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/machine.slice/libpod-${ID}.scope,task_memcg=/machine.slice/libpod-${ID}.scope/container,task=stress,pid=4242,uid=0`;
  t.equal(oomKilledContainer(v2), ID, 'cgroup v2 with systemd: libpod-<id>.scope/container');
  t.equal(oomKilledContainer(`[1.0] Memory cgroup out of memory: Killed process 22106 (sh) total-vm:20704kB`), undefined, 'the follow-up line is not counted twice');
  t.equal(oomKilledContainer(`[1.0] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/sshd.service,task=sshd,pid=1,uid=0`), undefined, 'a kill outside podman containers');
  t.equal(oomKilledContainer(`[1.0] oom-kill:task_memcg=/libpod_parent/libpod-conmon-${ID},task=conmon`), undefined, "conmon's own cgroup is not the container");
});
