/* A 30-line init with tini's contract: run COMMAND as the only child,
 * forward every signal to it, reap every zombie, exit with its status.
 * All signals stay blocked in PID 1 and are collected with sigtimedwait(2):
 * a blocked signal is never dropped, handler or not (lessons/FACTS.md §1).
 */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: init -- COMMAND [ARG...]\n");
        return 125;
    }
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    pid_t child = fork();
    if (child == 0) {
        sigprocmask(SIG_UNBLOCK, &all, NULL); /* the child starts clean */
        execvp(argv[2], argv + 2);
        perror("exec");
        _exit(127);
    }
    for (;;) {
        struct timespec tick = {0, 100 * 1000 * 1000};
        int sig = sigtimedwait(&all, NULL, &tick); /* a signal, or -1 after a tick */
        if (sig > 0 && sig != SIGCHLD)
            kill(child, sig);
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) /* every zombie */
            if (pid == child)
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
}
