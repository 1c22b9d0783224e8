/* Your sandbox: `sandbox ROOT COMMAND [ARG...]` must run COMMAND as PID 1
 * of a new PID namespace, in a mount namespace of its own, with ROOT as
 * its root directory and a /proc of the new namespace mounted in ROOT,
 * invisible to the host. Then wait for it and exit with its status.
 * Check it (as root) with
 *   pidlab lesson check 19 lessons/19-build-a-sandbox/sandbox.c
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: sandbox ROOT COMMAND [ARG...]\n");
        return 125;
    }
    if (unshare(CLONE_NEWPID) != 0) { perror("unshare"); return 125; }
    if (chroot(argv[1]) != 0 || chdir("/") != 0) { perror("chroot"); return 125; }
    execvp(argv[2], argv + 2);
    perror("exec");
    return 127;
}
