/* Monotonic wall-clock time for the library's timings (stats, progress). */
#ifndef KVP_UTIL_CLOCK_H
#define KVP_UTIL_CLOCK_H

#include <time.h>

static inline double kvu_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double kvu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

#endif
