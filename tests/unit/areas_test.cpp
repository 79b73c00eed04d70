#include "ldis/engine/areas.hpp"

#include <gtest/gtest.h>

#include "support/shipped.hpp"

using ldis::engine::Areas;
using ldis::engine::FoldName;
using ldis::test::ShippedAreas;

namespace {

TEST(AreasTest, FoldNameIgnoresCaseSpacingApostrophesAndAmpersands) {
    EXPECT_EQ(FoldName("St Mary's Island"), FoldName("st marys  island"));
    EXPECT_EQ(FoldName("St Mary\xE2\x80\x99s Island"), FoldName("St Marys Island"));
    EXPECT_EQ(FoldName("Chatham Central & Brompton"), FoldName("chatham central and brompton"));
    EXPECT_EQ(FoldName("Cuxton, Halling & Riverside"), "cuxton halling and riverside");
    EXPECT_NE(FoldName("Rainham North"), FoldName("Rainham South East"));
}

TEST(AreasTest, ShippedFileHasTwoAuthoritiesAndThirteenDistricts) {
    const auto& a = ShippedAreas();
    EXPECT_TRUE(a.HasAuthority("Kent"));
    EXPECT_TRUE(a.HasAuthority("Medway"));
    EXPECT_FALSE(a.HasAuthority("Essex"));
    for (const char* d :
         {"Ashford", "Canterbury", "Dartford", "Dover", "Folkestone & Hythe", "Gravesham",
          "Maidstone", "Sevenoaks", "Swale", "Thanet", "Tonbridge & Malling", "Tunbridge Wells"}) {
        EXPECT_EQ(a.AuthorityOf(d), "Kent") << d;
    }
    EXPECT_EQ(a.AuthorityOf("Medway"), "Medway");
    EXPECT_EQ(a.WardsOf("Medway").size(), 24u);
}

TEST(AreasTest, FormerWardsMapWhereUnambiguous) {
    const auto& a = ShippedAreas();
    auto cuxton = a.FindWard("Medway", "Cuxton and Halling");
    ASSERT_TRUE(cuxton);
    EXPECT_TRUE(cuxton->former);
    EXPECT_EQ(cuxton->current, "Cuxton, Halling & Riverside");
    auto peninsula = a.FindWard("Medway", "peninsula");
    ASSERT_TRUE(peninsula);
    EXPECT_TRUE(peninsula->former);
    EXPECT_EQ(peninsula->current,
              "");  // split between All Saints and Hoo St Werburgh & High Halstow
    auto today = a.FindWard("Medway", "wayfield and weeds wood");
    ASSERT_TRUE(today);
    EXPECT_FALSE(today->former);
    EXPECT_EQ(today->name, "Wayfield & Weeds Wood");
    EXPECT_FALSE(a.FindWard("Medway", "Sheerness"));
}

TEST(AreasTest, DistrictWithoutWardListAcceptsUnverified) {
    auto ward = ShippedAreas().FindWard("Thanet", "Cliftonville West");
    ASSERT_TRUE(ward);
    EXPECT_FALSE(ward->verified);
}

TEST(AreasTest, EstablishmentsByNameOrAlias) {
    const auto& a = ShippedAreas();
    const auto* elmley = a.FindEstablishment("elmley");
    ASSERT_NE(elmley, nullptr);
    EXPECT_EQ(elmley->name, "HMP Elmley");
    EXPECT_EQ(elmley->district, "Swale");
    EXPECT_EQ(elmley->kind, "prison");
    ASSERT_NE(a.FindEstablishment("Northfleet custody"), nullptr);
    EXPECT_EQ(a.FindEstablishment("Northfleet custody")->district, "Gravesham");
    ASSERT_NE(a.FindEstablishment("QEQM"), nullptr);
    EXPECT_EQ(a.FindEstablishment("HMP Nowhere"), nullptr);
    EXPECT_EQ(a.establishments().size(), 20u);
}

TEST(AreasTest, ErrorsNameFileAndLine) {
    const char* text =
        "[authorities]\n"
        "Kent = [\"Swale\"]\n"
        "\n"
        "[[establishments]]\n"
        "name = \"HMP Test\"\n"
        "kind = \"prison\"\n"
        "district = \"Atlantis\"\n";
    try {
        Areas::Parse(text, "areas.toml");
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "areas.toml:4: establishment \"HMP Test\" names unknown district \"Atlantis\"");
    }
    try {
        Areas::Parse("[authorities\nKent = 1\n", "areas.toml");
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("areas.toml:1: ", 0), 0u) << e.what();
    }
    try {
        Areas::Parse("[authorities]\nKent = [\"Swale\"]\n[wardz]\n", "areas.toml");
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("areas.toml:3: unknown section \"wardz\""),
                  std::string::npos)
            << e.what();
    }
}

}  // namespace
