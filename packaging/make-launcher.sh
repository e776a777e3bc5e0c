#!/bin/sh
# Prints the /usr/bin/podvisor launcher for an installed bundle: it runs the bundle with the given
# Node.js runtime and the environment and flags of the bundle's own first line (its
# `#!/usr/bin/env -S VAR=... node FLAGS` shebang, where they are chosen and explained: src/cli.ts),
# so the package and the installer start the agent exactly as `npm start` does.
#   make-launcher.sh RUNTIME BUNDLE [BUNDLE-AS-INSTALLED]
set -eu
runtime=$1 bundle=$2 installed=${3:-$2}
shebang=$(head -n 1 "$bundle")
case "$shebang" in
  '#!/usr/bin/env -S '*' node '*) ;;
  *) echo "make-launcher.sh: $bundle: first line is not '#!/usr/bin/env -S ... node ...'" >&2; exit 1 ;;
esac
rest=${shebang#'#!/usr/bin/env -S '}
environment=${rest%% node *}
flags=${rest#* node }
cat <<LAUNCHER
#!/bin/sh
# podvisor: the agent's bundle on its own Node.js runtime.
exec env $environment $runtime $flags $installed "\$@"
LAUNCHER
