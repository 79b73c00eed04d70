// Photos of a batch (issue 17 §3): what is uploaded is decoded and written anew, so nothing
// but its pixels survives: not the EXIF with its GPS position and owner, not a PNG's text.
// The type comes from the bytes, a bomb is refused before it is decoded, a damaged file is
// an error, and a large photo is made smaller.
#include "ldis/engine/photo.hpp"

#include <gtest/gtest.h>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

using ldis::engine::CleanUpload;
using ldis::engine::PhotoLimits;
using ldis::engine::SniffPhotoType;

namespace {

std::string Le16(std::uint32_t v) {
    return {static_cast<char>(v & 0xFF), static_cast<char>((v >> 8) & 0xFF)};
}
std::string Le32(std::uint32_t v) {
    return Le16(v & 0xFFFF) + Le16(v >> 16);
}
std::string Be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xFF),
            static_cast<char>((v >> 8) & 0xFF), static_cast<char>(v & 0xFF)};
}
std::string Entry(std::uint32_t tag, std::uint32_t type, std::uint32_t count, std::string value) {
    return Le16(tag) + Le16(type) + Le32(count) + value;
}

const std::string kOwner = "Jo Smith, Medway ED";
// GPSLatitude 51/1 23/1 2040/100: 51 degrees 23 minutes 20.40 seconds north (Chatham).
const std::string kLatitude = Le32(51) + Le32(1) + Le32(23) + Le32(1) + Le32(2040) + Le32(100);

// EXIF as a phone writes it, cut to what matters: IFD0 with the camera owner (Artist) and
// a pointer to the GPS IFD, which holds GPSLatitudeRef "N" and GPSLatitude.
std::string ExifWithGps() {
    std::string artist = kOwner + std::string(1, '\0');  // 20 bytes
    const std::uint32_t ifd0 = 8, artist_at = ifd0 + 2 + 2 * 12 + 4;
    const std::uint32_t gps = artist_at + static_cast<std::uint32_t>(artist.size());
    const std::uint32_t rationals = gps + 2 + 2 * 12 + 4;
    std::string tiff = std::string("II*\0", 4) + Le32(ifd0);
    tiff += Le16(2) + Entry(0x013B, 2, static_cast<std::uint32_t>(artist.size()), Le32(artist_at)) +
            Entry(0x8825, 4, 1, Le32(gps)) + Le32(0);
    tiff += artist;
    tiff += Le16(2) + Entry(0x0001, 2, 2, std::string("N\0\0\0", 4)) +
            Entry(0x0002, 5, 3, Le32(rationals)) + Le32(0);
    tiff += kLatitude;
    return std::string("Exif\0\0", 6) + tiff;
}

// A JPEG of a gradient, `exif` written as its APP1 segment and a comment after it.
std::string MakeJpeg(int width, int height, const std::string& exif, bool progressive = false) {
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr err{};
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_compress(&cinfo);
    unsigned char* buffer = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = static_cast<JDIMENSION>(width);
    cinfo.image_height = static_cast<JDIMENSION>(height);
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    if (!exif.empty()) {
        jpeg_write_marker(&cinfo, JPEG_APP0 + 1, reinterpret_cast<const JOCTET*>(exif.data()),
                          static_cast<unsigned int>(exif.size()));
        const std::string comment = "taken by " + kOwner;
        jpeg_write_marker(&cinfo, JPEG_COM, reinterpret_cast<const JOCTET*>(comment.data()),
                          static_cast<unsigned int>(comment.size()));
    }
    std::vector<unsigned char> row(static_cast<std::size_t>(width) * 3);
    while (cinfo.next_scanline < cinfo.image_height) {
        for (int x = 0; x < width; ++x) {
            row[static_cast<std::size_t>(x) * 3] = static_cast<unsigned char>(x * 255 / width);
            row[static_cast<std::size_t>(x) * 3 + 1] =
                static_cast<unsigned char>(cinfo.next_scanline * 255 / cinfo.image_height);
            row[static_cast<std::size_t>(x) * 3 + 2] = 90;
        }
        JSAMPROW r = row.data();
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    std::string out(reinterpret_cast<const char*>(buffer), size);
    std::free(buffer);
    return out;
}

std::string Chunk(const std::string& type, const std::string& data) {
    std::string body = type + data;
    const auto crc =
        crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
    return Be32(static_cast<std::uint32_t>(data.size())) + body +
           Be32(static_cast<std::uint32_t>(crc));
}

// A PNG with transparency, and after its header a tEXt chunk and an eXIf chunk with GPS.
std::string MakePng(int width, int height) {
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = static_cast<png_uint_32>(width);
    image.height = static_cast<png_uint_32>(height);
    image.format = PNG_FORMAT_RGBA;
    std::vector<unsigned char> pixels(PNG_IMAGE_SIZE(image), 200);
    png_alloc_size_t size = 0;
    png_image_write_to_memory(&image, nullptr, &size, 0, pixels.data(), 0, nullptr);
    std::string png(size, '\0');
    EXPECT_TRUE(png_image_write_to_memory(&image, png.data(), &size, 0, pixels.data(), 0, nullptr))
        << image.message;
    png.resize(size);
    const std::size_t after_header = 8 + 4 + 4 + 13 + 4;
    return png.substr(0, after_header) + Chunk("tEXt", std::string("Author\0", 7) + kOwner) +
           Chunk("eXIf", ExifWithGps().substr(6)) + png.substr(after_header);
}

// A PNG whose header claims `width` by `height`, with one tiny IDAT: a bomb's shape.
std::string PngClaiming(std::uint32_t width, std::uint32_t height) {
    std::string ihdr = Be32(width) + Be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
    return std::string("\x89PNG\r\n\x1a\n", 8) + Chunk("IHDR", ihdr) +
           Chunk("IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8)) + Chunk("IEND", "");
}

// The markers of a JPEG up to its image data (SOS).
std::set<int> Markers(const std::string& jpeg) {
    std::set<int> out;
    std::size_t at = 2;
    while (at + 4 <= jpeg.size() && static_cast<unsigned char>(jpeg[at]) == 0xFF) {
        const int marker = static_cast<unsigned char>(jpeg[at + 1]);
        out.insert(marker);
        if (marker == 0xDA) break;
        at += 2 + (static_cast<std::size_t>(static_cast<unsigned char>(jpeg[at + 2])) << 8) +
              static_cast<unsigned char>(jpeg[at + 3]);
    }
    return out;
}

// What besides the pixels is in a JPEG: markers other than a plain encoder's (JFIF, tables,
// frame, scan), EXIF, the owner's name, the GPS latitude. "" when nothing.
std::string Leftovers(const std::string& jpeg) {
    std::string found;
    if (SniffPhotoType(jpeg) != "image/jpeg") found += "not a JPEG; ";
    for (const int m : Markers(jpeg)) {
        if (m != 0xE0 && m != 0xDB && m != 0xC0 && m != 0xC4 && m != 0xDD && m != 0xDA)
            found += "marker " + std::to_string(m) + "; ";
    }
    if (jpeg.find("Exif") != std::string::npos) found += "EXIF; ";
    if (jpeg.find(kOwner) != std::string::npos) found += "the owner; ";
    if (jpeg.find(kLatitude) != std::string::npos) found += "the GPS latitude; ";
    return found;
}

}  // namespace

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
