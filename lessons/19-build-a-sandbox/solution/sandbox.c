/* The recipe in kernel order (pidlab's src/runtime/mod.rs does the same,
 * with more steps): new namespaces, fork so the child is PID 1, make /
 * private, switch root, mount /proc, exec. The parent waits and relays. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *step) { perror(step); return 125; }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: sandbox ROOT COMMAND [ARG...]\n");
        return 125;
    }
    /* PID and mount namespaces; CLONE_NEWPID applies to our children. */
    if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) return fail("unshare");
    pid_t child = fork();
    if (child < 0) return fail("fork");
    if (child == 0) {
        /* rprivate first, or the /proc mount below would propagate to the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) _exit(fail("make / private"));
        if (chroot(argv[1]) != 0 || chdir("/") != 0) _exit(fail("chroot"));
        /* This namespace's /proc: mounted by a process inside it. */
        if (mount("proc", "/proc", "proc", 0, NULL) != 0) _exit(fail("mount /proc"));
        execvp(argv[2], argv + 2);
        _exit(fail("exec"));
    }
    int status;
    if (waitpid(child, &status, 0) < 0) return fail("waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
