/* Signals of the long-running commands, in one place.
 *
 * Ctrl-C during a run (needle pred, longbench pred, generate, compare,
 * chat) sets cli_stop, which the run checks after every generated token:
 * the work finished so far is kept, the step in progress is dropped. In the
 * ONCE mode the handler removes itself, so a second Ctrl-C ends the process
 * at once (for a run stuck in a long prefill); in the REPEAT mode (chat)
 * every Ctrl-C stops the current reply and interrupts a blocking read.
 *
 * serve does not run handlers: SIGINT and SIGTERM are blocked in every
 * thread and the main thread waits for one. */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "cli.h"

volatile sig_atomic_t cli_stop;

static struct sigaction saved;
static bool armed;

static void on_sigint_once(int sig) {
    (void)sig;
    cli_stop = 1;
    signal(SIGINT, SIG_DFL);
}

static void on_sigint_repeat(int sig) {
    (void)sig;
    cli_stop = 1;
}

void cli_interrupt_arm(cli_interrupt_mode mode) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = mode == CLI_INTERRUPT_ONCE ? on_sigint_once : on_sigint_repeat;
    sigemptyset(&sa.sa_mask);
    /* chat: Ctrl-C at the prompt interrupts the read (no SA_RESTART); the
     * runs: writes and waits carry on */
    sa.sa_flags = mode == CLI_INTERRUPT_ONCE ? SA_RESTART : 0;
    cli_stop = 0;
    if (sigaction(SIGINT, &sa, armed ? NULL : &saved) == 0) armed = true;
}

void cli_interrupt_disarm(void) {
    if (armed) sigaction(SIGINT, &saved, NULL);
    armed = false;
}

bool cli_interrupt_token_cb(void *user, int32_t id, const float *logits, int n_vocab) {
    (void)user;
    (void)id;
    (void)logits;
    (void)n_vocab;
    return !cli_stop;
}

static sigset_t stop_set(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

void cli_stop_signals_block(void) {
    /* a client closing its socket must not kill the process */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set = stop_set();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int cli_stop_signals_wait(void) {
    sigset_t set = stop_set();
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    return sig;
}
