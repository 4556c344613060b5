#!/bin/sh
# ValidateService: fail the deployment (and so switch nothing) unless the
# off color answers its health check on this instance.
set -eu
BUNDLE=$(cd "$(dirname "$0")/.." && pwd)
oops -C "$BUNDLE" hook wait-healthy --timeout 2m
# Single instance, deployments not started by a waiting `oops deploy`
# (CodePipeline, the console, `oops deploy --no-wait`): switch from here, as
# the original tool did. Once per deployment; a no-op when `oops deploy`
# waits, since it switches itself. Leave it out on fleets: one instance's
# hook must not switch traffic for all of them.
# oops -C "$BUNDLE" hook switch --yes
