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

/* jansson's allocations: with -Wl,--wrap=json_load_file,--wrap=json_loadb
 * as well, and alloc_fault_json_install() called first (before the library
 * reads any JSON), alloc_fault_json_arm(n, k) makes the k-th allocation
 * jansson makes inside the n-th of these calls, and every later one in that
 * call, fail. Only the first few are safe with jansson 2.14: its lexer's
 * buffer, the first object (its struct, its table) and a first string
 * shorter than 16 bytes, before the lexer's buffer ever grows; a failure
 * to grow it can trip its assertions. */
void alloc_fault_json_install(void);
void alloc_fault_json_arm(long n, long k);
/* json_load_file/json_loadb calls counted since the last arm. */
long alloc_fault_json_calls(void);

#endif
