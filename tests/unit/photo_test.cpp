// Photos of a batch (issue 17 §3): what is uploaded is decoded and written anew, so nothing
// but its pixels survives: not the EXIF with its GPS position and owner, not a PNG's text.
// The type comes from the bytes, a bomb is refused before it is decoded, a damaged file is
// an error, and a large photo is made smaller.
#include "ldis/engine/photo.hpp"

#include <gtest/gtest.h>
#include <jpeglib.h>

#include "support/photos.hpp"

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

using ldis::engine::CleanUpload;
using ldis::engine::PhotoLimits;
using ldis::engine::SniffPhotoType;
using ldis::test::ExifWithGps;
using ldis::test::Leftovers;
using ldis::test::MakeJpeg;
using ldis::test::MakePng;
using ldis::test::Markers;
using ldis::test::PngClaiming;
const std::string& kOwner = ldis::test::kPhotoOwner;
const std::string& kLatitude = ldis::test::kPhotoLatitude;

TEST(PhotoTest, APhotosGpsPositionAndOwnerDoNotSurviveItsCleaning) {
    const std::string upload = MakeJpeg(640, 480, ExifWithGps());
    // The upload carries them (so the test can fail)...
    ASSERT_NE(upload.find("Exif"), std::string::npos);
    ASSERT_NE(upload.find(kLatitude), std::string::npos);
    ASSERT_NE(upload.find(kOwner), std::string::npos);
    ASSERT_TRUE(Markers(upload).contains(0xE1));
    ASSERT_EQ(Leftovers(upload),
              "marker 225; marker 254; EXIF; the owner; the GPS latitude; ");  // APP1, COM
    // ...the photo kept does not.
    const auto clean = CleanUpload(upload);
    ASSERT_TRUE(clean.ok()) << clean.error().message;
    EXPECT_EQ(clean.value().width, 640);
    EXPECT_EQ(clean.value().height, 480);
    EXPECT_EQ(clean.value().source_type, "image/jpeg");
    EXPECT_EQ(Leftovers(clean.value().jpeg), "");
    // It is a photo still: it reads back at the same size.
    const auto again = CleanUpload(clean.value().jpeg);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value().width, 640);
}

TEST(PhotoTest, APngsTextAndExifChunksAreGoneAndItBecomesAJpeg) {
    const std::string upload = MakePng(300, 200);
    ASSERT_NE(upload.find(kOwner), std::string::npos);
    ASSERT_NE(upload.find(kLatitude), std::string::npos);
    const auto clean = CleanUpload(upload);
    ASSERT_TRUE(clean.ok()) << clean.error().message;
    EXPECT_EQ(clean.value().source_type, "image/png");
    EXPECT_EQ(clean.value().width, 300);
    EXPECT_EQ(Leftovers(clean.value().jpeg), "");
}

TEST(PhotoTest, TheTypeComesFromTheBytesNeverTheName) {
    EXPECT_EQ(SniffPhotoType(MakeJpeg(8, 8, "")), "image/jpeg");
    EXPECT_EQ(SniffPhotoType(MakePng(8, 8)), "image/png");
    for (const std::string& not_a_photo :
         {std::string("GIF89a\x01\x00\x01\x00"), std::string("<html><script>alert(1)</script>"),
          std::string("%PDF-1.7"), std::string(), std::string("\xFF\xD8", 2)}) {
        const auto r = CleanUpload(not_a_photo);
        ASSERT_FALSE(r.ok());
        EXPECT_NE(r.error().message.find("not a JPEG or PNG photo"), std::string::npos)
            << r.error().message;
    }
}

TEST(PhotoTest, ABombIsRefusedFromItsHeaderBeforeAnyPixelIsDecoded) {
    // 60,000 by 60,000 pixels (10.8 GB decoded) in a file of 60 bytes.
    const auto png = CleanUpload(PngClaiming(60000, 60000));
    ASSERT_FALSE(png.ok());
    EXPECT_NE(png.error().message.find("60000 by 60000 pixels, more than the 50 million"),
              std::string::npos)
        << png.error().message;
    // A JPEG whose frame header is altered to say 65,000 by 65,000.
    std::string jpeg = MakeJpeg(16, 16, "");
    const auto sof = jpeg.find("\xFF\xC0");
    ASSERT_NE(sof, std::string::npos);
    jpeg.replace(sof + 5, 4, "\xFD\xE8\xFD\xE8");
    const auto j = CleanUpload(jpeg);
    ASSERT_FALSE(j.ok());
    EXPECT_NE(j.error().message.find("65000 by 65000 pixels"), std::string::npos)
        << j.error().message;
}

TEST(PhotoTest, TooLargeDamagedOrCutShortIsAClearErrorAndNeverACrash) {
    PhotoLimits small;
    small.max_bytes = 1000;
    const auto big = CleanUpload(MakeJpeg(400, 400, ""), small);
    ASSERT_FALSE(big.ok());
    EXPECT_NE(big.error().message.find("more than the 1000 bytes a photo may be"),
              std::string::npos)
        << big.error().message;
    EXPECT_FALSE(CleanUpload(std::string(5 * 1024 * 1024 + 1, '\xFF')).ok());  // over 5 MB
    const std::string whole = MakeJpeg(200, 200, "");
    const auto cut = CleanUpload(whole.substr(0, whole.size() / 2));
    ASSERT_FALSE(cut.ok());
    EXPECT_NE(cut.error().message.find("cut short"), std::string::npos) << cut.error().message;
    std::string garbled = whole;
    for (std::size_t i = 20; i < 200; ++i) garbled[i] = static_cast<char>(i * 7);
    EXPECT_FALSE(CleanUpload(garbled).ok());
    const std::string png = MakePng(50, 50);
    EXPECT_FALSE(CleanUpload(png.substr(0, png.size() - 30)).ok());
}

TEST(PhotoTest, ALargePhotoIsMadeSmallerKeepingItsShape) {
    const auto wide = CleanUpload(MakeJpeg(4000, 1000, "", true));  // progressive too
    ASSERT_TRUE(wide.ok()) << wide.error().message;
    EXPECT_LE(wide.value().width, 2048);
    EXPECT_GE(wide.value().width, 1500);
    EXPECT_NEAR(static_cast<double>(wide.value().width) / wide.value().height, 4.0, 0.05);
    const auto tall = CleanUpload(MakePng(10, 4100));
    ASSERT_TRUE(tall.ok()) << tall.error().message;
    EXPECT_LE(tall.value().height, 2048);
    EXPECT_GE(tall.value().height, 1300);
}
