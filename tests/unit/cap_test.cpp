// A peer's CAP, read as hostile (issue 16 §1): valid CAP 1.2 with the LDIS parameters is
// read; anything else is refused with the reason, and no entity, DTD or network is touched.
#include "ldis/engine/cap.hpp"

#include <gtest/gtest.h>

namespace {

using ldis::engine::ReadCap;

std::string Cap(const std::string& identifier = "KM-2026-0007-v2",
                const std::string& parameters =
                    "<parameter><valueName>LDIS-reference</valueName><value>KM-2026-0007</value>"
                    "</parameter><parameter><valueName>LDIS-version</valueName><value>2</value>"
                    "</parameter><parameter><valueName>LDIS-level</valueName><value>red</value>"
                    "</parameter><parameter><valueName>LDIS-authority</valueName><value>Medway"
                    "</value></parameter><parameter><valueName>LDIS-district</valueName><value>"
                    "Medway</value></parameter>",
                const std::string& status = "Exercise", const std::string& prolog = "") {
    return prolog + "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>" +
           identifier +
           "</identifier><sender>ldis@medway.example</sender><sent>2026-11-30T10:00:00+00:00</sent>"
           "<status>" +
           status +
           "</status><msgType>Update</msgType><scope>Restricted</scope><restriction>Partners"
           "</restriction><references>ldis@medway.example,KM-2026-0007-v1,2026-11-30T09:00:00+00:"
           "00</references><info><category>Health</category><event>Drug Alert</event><urgency>"
           "Immediate</urgency><severity>Extreme</severity><certainty>Likely</certainty>"
           "<headline>Red Drug Alert KM-2026-0007 v2</headline><description>Two deaths."
           "</description><instruction>Carry naloxone.</instruction>" +
           parameters + "<area><areaDesc>Medway</areaDesc></area></info></alert>";
}

TEST(CapTest, AValidAlertWithItsLdisParametersIsRead) {
    const auto v = ReadCap(Cap());
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v.value().identifier, "KM-2026-0007-v2");
    EXPECT_EQ(v.value().reference, "KM-2026-0007");
    EXPECT_EQ(v.value().version, 2);
    EXPECT_EQ(v.value().msg_type, "Update");
    EXPECT_EQ(v.value().cap_status, "Exercise");
    EXPECT_EQ(v.value().level, ldis::engine::Level::kRed);
    EXPECT_EQ(v.value().district, "Medway");
    EXPECT_EQ(v.value().description, "Two deaths.");
    EXPECT_EQ(v.value().instruction, "Carry naloxone.");
}

TEST(CapTest, AnythingElseIsRefusedWithTheReason) {
    const auto refused = [](const std::string& xml) {
        const auto v = ReadCap(xml);
        return v.ok() ? std::string("accepted") : v.error().message;
    };
    EXPECT_NE(refused("").find("empty"), std::string::npos);
    EXPECT_NE(refused("<alert").find("not well-formed"), std::string::npos);
    EXPECT_NE(refused(std::string(300000, ' ')).find("over the 262144"), std::string::npos);
    EXPECT_NE(refused("<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"/>")
                  .find("not valid CAP 1.2"),
              std::string::npos);
    EXPECT_NE(refused(Cap("KM-2026-0007-v2", "")).find("lacks the LDIS-reference"),
              std::string::npos);
    EXPECT_NE(refused(Cap("KM-2026-0009-v2")).find("is not KM-2026-0007-v2"), std::string::npos);
    EXPECT_NE(refused(Cap("KM-2026-0007-v2",
                          "<parameter><valueName>LDIS-reference</valueName><value>KM-2026-0007"
                          "</value></parameter><parameter><valueName>LDIS-version</valueName>"
                          "<value>2</value></parameter><parameter><valueName>LDIS-level"
                          "</valueName><value>purple</value></parameter><parameter><valueName>"
                          "LDIS-authority</valueName><value>Medway</value></parameter>"
                          "<parameter><valueName>LDIS-district</valueName><value>Medway</value>"
                          "</parameter>"))
                  .find("not red, amber or green"),
              std::string::npos);
    const std::string params =
        Cap().substr(Cap().find("<parameter>"), Cap().find("<area>") - Cap().find("<parameter>"));
    EXPECT_NE(refused(Cap("KM-2026-0007-v2", params, "Draft")).find("status Draft"),
              std::string::npos);
}

// XXE and entity expansion: a DOCTYPE is refused before anything is resolved, and a file's
// contents never reach the version.
TEST(CapTest, ADoctypeEntityOrExternalReferenceIsRefused) {
    const std::string xxe =
        "<?xml version=\"1.0\"?><!DOCTYPE alert [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>";
    const auto v = ReadCap(Cap("KM-2026-0007-v2",
                               "<parameter><valueName>LDIS-reference</valueName><value>&x;"
                               "</value></parameter>",
                               "Actual", xxe));
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.error().message.find("root:"), std::string::npos) << v.error().message;
    const std::string laughs =
        "<?xml version=\"1.0\"?><!DOCTYPE alert [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b "
        "\"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>";
    EXPECT_FALSE(ReadCap(Cap("KM-2026-0007-v2", "", "Actual", laughs)).ok());
}

}  // namespace
