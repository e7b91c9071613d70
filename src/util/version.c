#include "kvprune.h"

const char *kvp_version(void) { return KVP_VERSION; }
