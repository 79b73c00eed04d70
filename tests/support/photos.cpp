// Photos for the tests of the photo path (photos.hpp).
#include "support/photos.hpp"

#include <gtest/gtest.h>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "ldis/engine/photo.hpp"

namespace ldis::test {

using engine::SniffPhotoType;

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

std::string Chunk(const std::string& type, const std::string& data) {
    std::string body = type + data;
    const auto crc =
        crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
    return Be32(static_cast<std::uint32_t>(data.size())) + body +
           Be32(static_cast<std::uint32_t>(crc));
}

}  // namespace

const std::string kPhotoOwner = "Jo Smith, Medway ED";
// GPSLatitude 51/1 23/1 2040/100: 51 degrees 23 minutes 20.40 seconds north (Chatham).
const std::string kPhotoLatitude = Le32(51) + Le32(1) + Le32(23) + Le32(1) + Le32(2040) + Le32(100);

// EXIF as a phone writes it, cut to what matters: IFD0 with the camera owner (Artist) and
// a pointer to the GPS IFD, which holds GPSLatitudeRef "N" and GPSLatitude.
std::string ExifWithGps() {
    std::string artist = kPhotoOwner + std::string(1, '\0');  // 20 bytes
    const std::uint32_t ifd0 = 8, artist_at = ifd0 + 2 + 2 * 12 + 4;
    const std::uint32_t gps = artist_at + static_cast<std::uint32_t>(artist.size());
    const std::uint32_t rationals = gps + 2 + 2 * 12 + 4;
    std::string tiff = std::string("II*\0", 4) + Le32(ifd0);
    tiff += Le16(2) + Entry(0x013B, 2, static_cast<std::uint32_t>(artist.size()), Le32(artist_at)) +
            Entry(0x8825, 4, 1, Le32(gps)) + Le32(0);
    tiff += artist;
    tiff += Le16(2) + Entry(0x0001, 2, 2, std::string("N\0\0\0", 4)) +
            Entry(0x0002, 5, 3, Le32(rationals)) + Le32(0);
    tiff += kPhotoLatitude;
    return std::string("Exif\0\0", 6) + tiff;
}

std::string ExifWithOrientation(int orientation, bool motorola) {
    const auto u16 = [&](std::uint32_t v) {
        std::string le = Le16(v);
        return motorola ? std::string{le[1], le[0]} : le;
    };
    const auto u32 = [&](std::uint32_t v) {
        return motorola ? u16(v >> 16) + u16(v & 0xFFFF) : u16(v & 0xFFFF) + u16(v >> 16);
    };
    std::string tiff = motorola ? std::string("MM\0*", 4) : std::string("II*\0", 4);
    tiff += u32(8) + u16(1);  // IFD0 at 8, one entry: Orientation, SHORT, 1, in place
    tiff += u16(0x0112) + u16(3) + u32(1) + u16(static_cast<std::uint32_t>(orientation)) + u16(0);
    tiff += u32(0);
    return std::string("Exif\0\0", 6) + tiff;
}

// A JPEG of a gradient, `exif` written as its APP1 segment and a comment after it.
std::string MakeJpeg(int width, int height, const std::string& exif, bool progressive) {
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
        const std::string comment = "taken by " + kPhotoOwner;
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
    return png.substr(0, after_header) + Chunk("tEXt", std::string("Author\0", 7) + kPhotoOwner) +
           Chunk("eXIf", ExifWithGps().substr(6)) + png.substr(after_header);
}

// A PNG whose header claims `width` by `height`, with one tiny IDAT: a bomb's shape.
std::string PngClaiming(unsigned width, unsigned height) {
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
    if (jpeg.find(kPhotoOwner) != std::string::npos) found += "the owner; ";
    if (jpeg.find(kPhotoLatitude) != std::string::npos) found += "the GPS latitude; ";
    return found;
}

}  // namespace ldis::test
