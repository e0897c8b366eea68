// libFuzzer target: UPDATE message bodies. The first input byte picks the session context
// (4-octet AS, eBGP, add-path per family, extended messages); the rest is the body. Besides
// memory safety (ASan/UBSan), checks that an accepted UPDATE re-encodes to one that
// decodes to the same routes and attributes, and that errors always say why.
#include "control/bgp/message.hpp"

#include <cstdio>
#include <cstdlib>

using namespace vleaf::bgp;

[[noreturn]] static void fail(const char *what, const UpdateResult &r) {
    std::fprintf(stderr, "%s (action %d, %s)\n", what, int(r.action), r.reason.c_str());
    std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    CodecContext ctx;
    uint8_t mode = data[0];
    ctx.four_octet_as = !(mode & 0x01);
    ctx.ebgp = mode & 0x02;
    ctx.add_path_rx = {bool(mode & 0x04), bool(mode & 0x08), bool(mode & 0x10)};
    ctx.add_path_tx = ctx.add_path_rx;
    ctx.extended_message = mode & 0x20;
    ctx.families = {true, !(mode & 0x40), !(mode & 0x80)};
    ByteView body(data + 1, size - 1);

    static UpdateResult r; // reused, as a session would
    decode_update(body, ctx, r);
    if (r.action != UpdateAction::Ok && r.reason.empty()) fail("error without a reason", r);
    if ((r.action == UpdateAction::SessionReset || r.action == UpdateAction::AfiSafiDisable) &&
        !r.notification)
        fail("reset without a NOTIFICATION", r);
    (void)end_of_rib(r.update);
    // AS4_PATH merging of odd 2-octet paths is not an identity; round trip 4-octet only.
    if (!ctx.four_octet_as || r.action > UpdateAction::AttributeDiscard) return 0;
    Bytes b;
    ctx.extended_message = true; // the re-encoding is never longer than the input
    if (!encode_update(r.update, ctx, b)) return 0;
    auto again = decode_update(ByteView(b).subspan(kHeaderLen), ctx);
    if (again.action != UpdateAction::Ok) fail("re-encoded UPDATE does not decode cleanly", again);
    if (!(again.update == r.update)) fail("re-encoded UPDATE decodes differently", again);
    return 0;
}
