#include "vleaf/addr.hpp"

#include <gtest/gtest.h>

using namespace vleaf;

TEST(Addr, ParsesAndFormatsBothFamilies) {
    auto a = IpAddr::parse("10.1.2.3");
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->is_v4());
    EXPECT_EQ(a->v4_host(), 0x0a010203u);
    EXPECT_EQ(a->str(), "10.1.2.3");
    auto b = IpAddr::parse("fd00::1");
    ASSERT_TRUE(b);
    EXPECT_FALSE(b->is_v4());
    EXPECT_EQ(b->str(), "fd00::1");
    EXPECT_FALSE(IpAddr::parse("10.1.2.300"));
    EXPECT_FALSE(IpAddr::parse("fd00::1::2"));
}

TEST(Addr, PrefixRejectsHostBitsUnlessAllowed) {
    EXPECT_FALSE(Prefix::parse("10.0.0.1/24"));
    auto p = Prefix::parse("10.0.0.1/24", true);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->masked().str(), "10.0.0.0/24");
    EXPECT_TRUE(p->contains(*IpAddr::parse("10.0.0.200")));
    EXPECT_FALSE(p->contains(*IpAddr::parse("10.0.1.1")));
    EXPECT_FALSE(Prefix::parse("10.0.0.0/33"));
    EXPECT_FALSE(Prefix::parse("10.0.0.0/"));
    EXPECT_FALSE(Prefix::parse("10.0.0.0/2x"));
    auto v6 = Prefix::parse("fd00:1::/122");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->len, 122);
    EXPECT_EQ(Prefix::parse("0.0.0.0/0")->len, 0);
}

TEST(Addr, Mac) {
    auto m = MacAddr::parse("02:00:00:aa:bb:0c");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->str(), "02:00:00:aa:bb:0c");
    EXPECT_FALSE(MacAddr::parse("02:00:00:aa:bb"));
    EXPECT_FALSE(MacAddr::parse("02:00:00:aa:bb:0c:11"));
}
