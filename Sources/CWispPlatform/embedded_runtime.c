// embedded_runtime.c — a correction to the Embedded Swift runtime of the toolchain we
// build with (Swift 6.3.1), compiled only into Embedded builds (WISP_EMBEDDED).
//
// Its swift_bridgeObjectRetain[_n] (stdlib EmbeddedRuntime.swift) returns the object with
// the bridge tag bits masked off, while the compiler declares the argument `returned` and
// may use the return value in place of the argument. For a small (inline) String the
// "object" word is its discriminator and last bytes: masked, the string reads as a large
// one whose length is its first six characters. The -Osize aarch64 build did exactly
// that to a 7-byte client id. Fixed upstream in swiftlang/swift#91151; these strong
// definitions replace the runtime's weak ones until our toolchain has the fix.
#if defined(WISP_EMBEDDED)
#include <stdint.h>

void *swift_retain_n(void *object, uint32_t n);

#if UINTPTR_MAX > 0xFFFFFFFFu
#define WISP_BRIDGE_OBJECT_POINTER_MASK ((uintptr_t)0x8FFFFFFFFFFFFFF8u)
#else
#define WISP_BRIDGE_OBJECT_POINTER_MASK ((uintptr_t)0xFFFFFFFFu)
#endif

void *swift_bridgeObjectRetain_n(void *object, uint32_t n) {
    (void)swift_retain_n((void *)((uintptr_t)object & WISP_BRIDGE_OBJECT_POINTER_MASK), n);
    return object;
}

void *swift_bridgeObjectRetain(void *object) {
    return swift_bridgeObjectRetain_n(object, 1);
}
#endif
