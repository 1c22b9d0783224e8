/* Your init. pidlab runs it as PID 1, as `init -- COMMAND ARGS...`
 * (`pidlab run --init=/lesson/init -- ...`, the way `docker run --init`
 * runs docker-init). It must:
 *   1. start COMMAND as its child;
 *   2. pass every signal it receives on to that child (PID 1 has no
 *      handlers, so a signal it does not collect is dropped);
 *   3. reap every zombie in the namespace, orphans included;
 *   4. exit with the child's status: its exit code, or 128+N when a
 *      signal N killed it.
 * This starter does 1 and a part of 4. Check it with
 *   pidlab lesson check 17 lessons/17-write-an-init/init.c
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: init -- COMMAND [ARG...]\n");
        return 125;
    }
    pid_t child = fork();
    if (child == 0) {
        execvp(argv[2], argv + 2);
        perror("exec");
        _exit(127);
    }
    int status;
    waitpid(child, &status, 0);
    return WEXITSTATUS(status);
}
