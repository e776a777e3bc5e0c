/*
 * The benchmarks' podman wrapper: appends "<ns since the epoch> <args>" to $PVB_CALLS_FILE, then
 * execs the real podman (REAL_PODMAN, set at compile time). In C because a bash wrapper's own
 * start-up (about 15 ms here) would be counted in every call it times.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  const char *file = getenv("PVB_CALLS_FILE");
  if (file != NULL) {
    static char line[65536];
    int used = snprintf(line, sizeof line, "%lld%09ld", (long long)now.tv_sec, now.tv_nsec);
    for (int i = 1; i < argc && used < (int)sizeof line - 2; i++) used += snprintf(line + used, sizeof line - used, " %s", argv[i]);
    if (used > (int)sizeof line - 2) used = (int)sizeof line - 2;
    line[used++] = '\n';
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
      /* One write with O_APPEND: lines from calls made at once never interleave. */
      if (write(fd, line, used) < 0) perror("podman-wrapper");
      close(fd);
    }
  }
  argv[0] = REAL_PODMAN;
  execv(REAL_PODMAN, argv);
  perror("podman-wrapper: " REAL_PODMAN);
  return 127;
}
