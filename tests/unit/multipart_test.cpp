// multipart/form-data (web/include/ldis/web/multipart.hpp): pure, no sockets. The bodies
// are as Chromium and Firefox send them; the hostile ones as anyone can.
#include "ldis/web/multipart.hpp"

#include <gtest/gtest.h>

namespace {

using ldis::web::FileNameForMessage;
using ldis::web::IsMultipartForm;
using ldis::web::ParseMultipart;

const std::string kType = "multipart/form-data; boundary=----WebKitFormBoundaryx7Gq2Jp9dA1b";
const std::string kDash = "------WebKitFormBoundaryx7Gq2Jp9dA1b";

std::string Field(const std::string& name, const std::string& value) {
    return kDash + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value +
           "\r\n";
}

TEST(MultipartTest, ReadsFieldsAndFilesAsABrowserSendsThem) {
    const std::string jpeg("\xFF\xD8\xFF\xE0\r\n--not-the-boundary\r\n\0\x01", 26);
    const std::string body = Field("csrf", "a1b2") + Field("sign", "vomiting") +
                             Field("sign", "seizures") + kDash +
                             "\r\nContent-Disposition: form-data; name=\"photos\"; "
                             "filename=\"IMG_0001.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n" +
                             jpeg + "\r\n" + kDash +
                             "\r\nContent-Disposition: form-data; name=\"photos\"; "
                             "filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n" +
                             Field("description", "two lines\r\nof text") + kDash + "--\r\n";
    ASSERT_TRUE(IsMultipartForm(kType));
    const auto parts = ParseMultipart(kType, body);
    ASSERT_TRUE(parts.ok()) << parts.error().message;
    const auto& p = parts.value();
    ASSERT_EQ(p.size(), 6u);
    EXPECT_EQ(p[0].name, "csrf");
    EXPECT_EQ(p[0].data, "a1b2");
    EXPECT_FALSE(p[0].filename);
    EXPECT_EQ(p[2].data, "seizures");
    EXPECT_EQ(p[3].name, "photos");
    EXPECT_EQ(p[3].filename, "IMG_0001.jpg");
    EXPECT_EQ(p[3].content_type, "image/jpeg");
    EXPECT_EQ(p[3].data, jpeg) << "a file's bytes come back byte for byte, NUL and CRLF too";
    EXPECT_EQ(p[4].filename, "") << "a file input left empty is a part with no name and no bytes";
    EXPECT_EQ(p[4].data, "");
    EXPECT_EQ(p[5].data, "two lines\r\nof text");
}

TEST(MultipartTest, AQuotedBoundaryAPreambleAndHeadersInAnyCase) {
    const std::string body =
        "This is the preamble, ignored\r\n--a b'c\r\ncontent-disposition: FORM-DATA; "
        "NAME=\"x\\\"y\"\r\n\r\n1\r\n--a b'c--\r\nand an epilogue";
    const auto parts =
        ParseMultipart("Multipart/Form-Data; charset=utf-8; boundary=\"a b'c\"", body);
    ASSERT_TRUE(parts.ok()) << parts.error().message;
    ASSERT_EQ(parts.value().size(), 1u);
    EXPECT_EQ(parts.value()[0].name, "x\"y");
    EXPECT_EQ(parts.value()[0].data, "1");
}

TEST(MultipartTest, RefusesWhatCannotBeReadSayingWhy) {
    const auto error = [](const std::string& type, const std::string& body) {
        const auto parts = ParseMultipart(type, body);
        return parts.ok() ? std::string("read") : parts.error().message;
    };
    EXPECT_EQ(error("application/x-www-form-urlencoded", "a=b"),
              "the form is not multipart/form-data");
    EXPECT_NE(error("multipart/form-data", "").find("no boundary"), std::string::npos);
    EXPECT_NE(
        error("multipart/form-data; boundary=" + std::string(71, 'b'), "").find("no boundary"),
        std::string::npos)
        << "RFC 2046 allows 70 characters at most";
    EXPECT_NE(error("multipart/form-data; boundary=a<b", "").find("no boundary"),
              std::string::npos);
    EXPECT_EQ(error("multipart/form-data; boundary=\"ab", ""),
              "the form's Content-Type cannot be read: a quote is not closed");
    EXPECT_EQ(error(kType, "just text"), "the form's body has no part");
    // Cut short: in a header, in a part's data, before the closing delimiter.
    EXPECT_NE(
        error(kType, kDash + "\r\nContent-Disposition: form-data; name=\"a\"").find("cut short"),
        std::string::npos);
    EXPECT_NE(error(kType, Field("a", "1").substr(0, 60)).find("cut short"), std::string::npos);
    EXPECT_NE(error(kType, Field("a", "1") + kDash).find("cut short"), std::string::npos);
    EXPECT_NE(error(kType, Field("a", "1")).find("cut short"), std::string::npos);
    // A part must be form-data with a name.
    EXPECT_EQ(error(kType, kDash + "\r\nContent-Type: text/plain\r\n\r\nx\r\n" + kDash + "--"),
              "a part of the form has no Content-Disposition");
    EXPECT_EQ(
        error(kType, kDash + "\r\nContent-Disposition: form-data\r\n\r\nx\r\n" + kDash + "--"),
        "a part of the form has no name");
    EXPECT_EQ(error(kType, kDash + "\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n" +
                               kDash + "--"),
              "a part of the form is not form-data");
    EXPECT_EQ(error(kType, kDash + "\r\nno colon here\r\n\r\nx\r\n" + kDash + "--"),
              "a part of the form has a header line without a colon");
    EXPECT_EQ(error(kType, kDash + "\r\n\r\nx\r\n" + kDash + "--"),
              "a part of the form has no Content-Disposition");
}

TEST(MultipartTest, HoldsToItsLimits) {
    std::string many;
    for (int i = 0; i < 201; ++i) many += Field("f", "1");
    many += kDash + "--";
    EXPECT_EQ(ParseMultipart(kType, many).error().message, "the form has more than 200 fields");
    const std::string long_header = kDash + "\r\nContent-Disposition: form-data; name=\"" +
                                    std::string(3000, 'n') + "\"\r\n\r\nx\r\n" + kDash + "--";
    EXPECT_EQ(ParseMultipart(kType, long_header).error().message,
              "a part of the form has a header over 2048 bytes");
}

TEST(MultipartTest, AFilesNameIsFitToRepeatToItsSender) {
    EXPECT_EQ(FileNameForMessage("IMG_0001.jpg"), "IMG_0001.jpg");
    EXPECT_EQ(FileNameForMessage("C:\\Users\\jo\\Pictures\\bag.png"), "bag.png");
    EXPECT_EQ(FileNameForMessage("../../etc/passwd"), "passwd");
    EXPECT_EQ(FileNameForMessage("a\r\nb\x1b[31m.jpg"), "ab[31m.jpg");
    EXPECT_EQ(FileNameForMessage(""), "the file");
    // 61 two-byte letters: cut at 60 letters, never inside one.
    std::string greek;
    for (int i = 0; i < 61; ++i) greek += "\xCE\xB1";
    EXPECT_EQ(FileNameForMessage(greek), greek.substr(0, 120));
    EXPECT_EQ(FileNameForMessage("ab\xE2\x82"), "ab") << "a character cut short is left out";
}

}  // namespace
