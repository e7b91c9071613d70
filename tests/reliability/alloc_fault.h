/* Allocation-failure injection for tests: the test binary is linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup
 * so that every allocation made by the library's objects (and the test's)
 * goes through a counter; alloc_fault_arm(n) makes the n-th one from then
 * on return NULL. jansson's own allocations are not failed: its lexer
 * (2.14) asserts when one of them fails, which no caller can handle. */
#ifndef KVP_TESTS_ALLOC_FAULT_H
#define KVP_TESTS_ALLOC_FAULT_H

/* Starts counting from 0; the n-th allocation fails (0: none fails). */
void alloc_fault_arm(long n);
/* Allocations counted since the last arm. */
long alloc_fault_count(void);
/* True when the armed failure has happened. */
int alloc_fault_fired(void);

#endif
