#include "dtrain_support.h"

__attribute__((swiftcall)) dtrain_closure dtrain_closure_parts(const void *function, const void *context) {
    dtrain_closure closure = { function, context };
    return closure;
}
