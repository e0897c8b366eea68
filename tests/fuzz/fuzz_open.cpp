// libFuzzer target: OPEN message bodies. Besides memory safety (ASan/UBSan), checks that
// whatever decodes re-encodes to something that decodes to the same OPEN.
#include "control/bgp/message.hpp"

#include <cstdio>
#include <cstdlib>

using namespace vleaf::bgp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ByteView in(data, size);
    if (size >= kHeaderLen) (void)decode_header(in, kMaxMessageLen);
    auto d = decode_open(in);
    if (d.error) return 0;
    Bytes b;
    encode_open(d.open, b);
    auto h = decode_header(b, kMaxExtendedMessageLen);
    auto again = decode_open(ByteView(b).subspan(kHeaderLen));
    if (h.error || h.header.length != b.size() || again.error || !(again.open == d.open)) {
        std::fprintf(stderr, "OPEN round trip differs (%s)\n",
                     again.error ? again.error->str().c_str() : "decoded value");
        std::abort();
    }
    return 0;
}
