/*
 * breakfix-pause: the sandbox ("pause") container of every pod.
 *
 * It holds the pod's namespaces open and does nothing else: as PID 1 of the
 * pod it reaps zombies (processes re-parented to it when a pod shares its PID
 * namespace) and exits 0 on SIGINT/SIGTERM. Signals are handled synchronously
 * with sigwaitinfo(2), so there are no async-signal-safety concerns.
 * Built statically (gcc -static) for a FROM scratch image.
 *
 * Written for breakfix; not derived from Kubernetes' pause.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PAUSE_VERSION
#define PAUSE_VERSION "dev"
#endif

static void reap_children(void) {
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);
		if (pid > 0)
			continue; /* reaped one, look for more */
		if (pid < 0 && errno == EINTR)
			continue;
		return; /* 0: children left but none exited; -1/ECHILD: none left */
	}
}

int main(int argc, char **argv) {
	if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("breakfix-pause %s\n", PAUSE_VERSION);
		return 0;
	}
	if (getpid() != 1)
		fprintf(stderr, "breakfix-pause: warning: not PID 1, zombies of other processes will not be reaped here\n");

	/* Block what we wait for; everything else keeps its default disposition
	 * (SIGKILL/SIGSTOP cannot be caught anyway). */
	sigset_t wanted;
	sigemptyset(&wanted);
	sigaddset(&wanted, SIGINT);
	sigaddset(&wanted, SIGTERM);
	sigaddset(&wanted, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &wanted, NULL) != 0) {
		perror("breakfix-pause: sigprocmask");
		return 1;
	}

	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&wanted, &info);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			perror("breakfix-pause: sigwaitinfo");
			return 1;
		}
		switch (sig) {
		case SIGCHLD:
			reap_children();
			break;
		case SIGINT:
		case SIGTERM:
			return 0;
		}
	}
}
