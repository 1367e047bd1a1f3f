#include "dtrain_support.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int signo) {
    if (stop_signal != 0) {
        static const char message[] = "dtrain: second stop signal, exiting without a checkpoint\n";
        ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
        (void)ignored;
        _exit(128 + signo);
    }
    stop_signal = signo;
}

void dtrain_stop_signals_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    // SA_RESTART: a read or write the signal interrupts resumes instead of failing with EINTR.
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGUSR1, &action, NULL);
}

int dtrain_stop_signal_received(void) { return stop_signal; }

void dtrain_stop_signal_reset(void) { stop_signal = 0; }
