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
using ldis::test::ExifWithOrientation;
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

namespace {

struct Decoded {
    int width = 0, height = 0;
    std::vector<unsigned char> rgb;
    // The colour near a corner: "TL", "TR", "BL", "BR" (a few pixels in, off JPEG's edges).
    std::pair<int, int> RedGreenAt(const std::string& corner) const {
        const int x = corner[1] == 'L' ? 3 : width - 4, y = corner[0] == 'T' ? 3 : height - 4;
        const auto at = (static_cast<std::size_t>(y) * static_cast<std::size_t>(width) +
                         static_cast<std::size_t>(x)) *
                        3;
        return {rgb[at], rgb[at + 1]};
    }
};

Decoded Decode(const std::string& jpeg) {
    jpeg_decompress_struct cinfo{};
    jpeg_error_mgr err{};
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(jpeg.data()),
                 static_cast<unsigned long>(jpeg.size()));
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    Decoded d;
    d.width = static_cast<int>(cinfo.output_width);
    d.height = static_cast<int>(cinfo.output_height);
    d.rgb.resize(static_cast<std::size_t>(d.width) * static_cast<std::size_t>(d.height) * 3);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = d.rgb.data() + static_cast<std::size_t>(d.width) * 3 * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return d;
}

}  // namespace

// A phone held sideways stores its pixels sideways and says so in EXIF's Orientation. The
// photo kept is turned upright before the EXIF is dropped, or a partner would see the
// tablets on their side with nothing left to say why. The stored gradient's corners are
// told apart by colour (red grows to the right, green downwards); where each must be seen
// is EXIF 2.3's table, written here as corners rather than as the code's arithmetic.
TEST(PhotoTest, APhotoIsTurnedUprightAsItsExifOrientationSaysBeforeTheExifIsDropped) {
    struct Seen {
        int orientation;
        bool turned;                                     // width and height swap
        const char *top_left, *top_right, *bottom_left;  // where the stored corner is seen
    };
    const Seen table[] = {{1, false, "TL", "TR", "BL"}, {2, false, "TR", "TL", "BR"},
                          {3, false, "BR", "BL", "TR"}, {4, false, "BL", "BR", "TL"},
                          {5, true, "TL", "BL", "TR"},  {6, true, "TR", "BR", "TL"},
                          {7, true, "BR", "TR", "BL"},  {8, true, "BL", "TL", "BR"}};
    const Decoded stored = Decode(MakeJpeg(240, 120, ""));
    for (const bool motorola : {false, true}) {
        for (const auto& want : table) {
            SCOPED_TRACE("orientation " + std::to_string(want.orientation) +
                         (motorola ? " (MM)" : " (II)"));
            const auto clean =
                CleanUpload(MakeJpeg(240, 120, ExifWithOrientation(want.orientation, motorola)));
            ASSERT_TRUE(clean.ok()) << clean.error().message;
            EXPECT_EQ(clean.value().width, want.turned ? 120 : 240);
            EXPECT_EQ(clean.value().height, want.turned ? 240 : 120);
            EXPECT_EQ(Leftovers(clean.value().jpeg), "");
            const Decoded seen = Decode(clean.value().jpeg);
            for (const auto& [from, to] : {std::pair<const char*, const char*>{"TL", want.top_left},
                                           {"TR", want.top_right},
                                           {"BL", want.bottom_left}}) {
                const auto [r0, g0] = stored.RedGreenAt(from);
                const auto [r1, g1] = seen.RedGreenAt(to);
                EXPECT_NEAR(r1, r0, 12) << "the stored " << from << " corner, seen at " << to;
                EXPECT_NEAR(g1, g0, 12) << "the stored " << from << " corner, seen at " << to;
            }
        }
    }
    // An orientation EXIF does not have, or an EXIF cut short, leaves the photo as stored.
    for (const int odd : {0, 9, 65535}) {
        const auto clean = CleanUpload(MakeJpeg(240, 120, ExifWithOrientation(odd)));
        ASSERT_TRUE(clean.ok());
        EXPECT_EQ(clean.value().width, 240) << odd;
    }
    const std::string cut = ExifWithOrientation(6).substr(0, 14);
    const auto clean = CleanUpload(MakeJpeg(240, 120, cut));
    ASSERT_TRUE(clean.ok());
    EXPECT_EQ(clean.value().width, 240);
}
