#include "ldis/engine/photo.hpp"

// libjpeg reports errors by calling error_exit, which must not return: the way its own
// example takes is setjmp/longjmp. Only libjpeg's C frames lie between the two here, and the
// C++ objects the decoder fills belong to the caller, so no destructor is skipped. libpng's
// simplified API (png_image) keeps its longjmp inside and returns an error message instead.
#include <cstddef>  // jpeglib.h needs size_t and FILE declared before it
#include <cstdio>

#include <jerror.h>
#include <jpeglib.h>
#include <libexif/exif-data.h>
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace ldis::engine {
namespace {

// An RGB image, 3 bytes a pixel, rows top to bottom.
struct Pixels {
    int width = 0;
    int height = 0;
    std::vector<unsigned char> rgb;
    // How a camera says the stored pixels are to be turned to be seen upright: EXIF's
    // Orientation, 1 (as stored) to 8. A phone held sideways stores its pixels sideways.
    int orientation = 1;
};

// EXIF's Orientation from an APP1 segment ("Exif\0\0" and TIFF), read by libexif; 1 when
// there is none or it cannot be read (a damaged EXIF leaves the photo as stored).
int ExifOrientation(const unsigned char* segment, unsigned int size) {
    ExifData* exif = exif_data_new_from_data(segment, size);
    if (!exif) return 1;
    int orientation = 1;
    const ExifEntry* entry = exif_content_get_entry(exif->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (entry && entry->format == EXIF_FORMAT_SHORT && entry->components == 1 && entry->size >= 2)
        orientation = exif_get_short(entry->data, exif_data_get_byte_order(exif));
    exif_data_unref(exif);
    return orientation >= 1 && orientation <= 8 ? orientation : 1;
}

// The pixels as they are to be seen (EXIF 2.3, Orientation): each pixel of the upright image
// taken from where the camera stored it. 5 to 8 swap width and height.
Pixels Upright(const Pixels& in) {
    if (in.orientation == 1) return in;
    const int w = in.width, h = in.height, o = in.orientation;
    Pixels out;
    out.width = o >= 5 ? h : w;
    out.height = o >= 5 ? w : h;
    out.rgb.resize(in.rgb.size());
    for (int y = 0; y < out.height; ++y) {
        for (int x = 0; x < out.width; ++x) {
            int sx = x, sy = y;
            switch (o) {
                case 2:
                    sx = w - 1 - x;
                    break;  // mirrored
                case 3:
                    sx = w - 1 - x;
                    sy = h - 1 - y;
                    break;  // upside down
                case 4:
                    sy = h - 1 - y;
                    break;  // mirrored, upside down
                case 5:
                    sx = y;
                    sy = x;
                    break;  // transposed
                case 6:
                    sx = y;
                    sy = h - 1 - x;
                    break;  // turned right to be seen
                case 7:
                    sx = w - 1 - y;
                    sy = h - 1 - x;
                    break;  // transversed
                case 8:
                    sx = w - 1 - y;
                    sy = x;
                    break;  // turned left to be seen
                default:
                    break;
            }
            const auto from = (static_cast<std::size_t>(sy) * static_cast<std::size_t>(w) +
                               static_cast<std::size_t>(sx)) *
                              3;
            const auto to = (static_cast<std::size_t>(y) * static_cast<std::size_t>(out.width) +
                             static_cast<std::size_t>(x)) *
                            3;
            std::memcpy(&out.rgb[to], &in.rgb[from], 3);
        }
    }
    return out;
}

struct JpegError {
    jpeg_error_mgr manager;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    bool cut_short;  // the data ended before the image did (libjpeg fills the rest grey)
};

[[noreturn]] void OnJpegError(j_common_ptr cinfo) {
    auto* e = reinterpret_cast<JpegError*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, e->message);
    std::longjmp(e->jump, 1);
}

// Warnings: libjpeg reads on through corrupt data; a file that ends before its image does
// is refused (its missing rows would be grey), other warnings are let be.
void OnJpegMessage(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        reinterpret_cast<JpegError*>(cinfo->err)->cut_short = true;
}

// A progressive JPEG may hold thousands of tiny scans, each a pass over the whole image: a
// bomb of time rather than memory (libjpeg-turbo's own tools stop at 500).
constexpr int kMaxScans = 500;

void OnJpegProgress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxScans) {
        auto* e = reinterpret_cast<JpegError*>(cinfo->err);
        std::snprintf(e->message, sizeof e->message, "it has more than %d scans", kMaxScans);
        std::longjmp(e->jump, 1);
    }
}

std::string TooMany(std::uint64_t width, std::uint64_t height, const PhotoLimits& limits) {
    return "the photo is " + std::to_string(width) + " by " + std::to_string(height) +
           " pixels, more than the " + std::to_string(limits.max_pixels / 1'000'000) +
           " million a photo may have";
}

// Decodes a JPEG into `out` (RGB), scaled down by eighths while decoding as far as
// `max_side` asks (and no further than 1/8); "" or why not.
std::string DecodeJpeg(std::string_view bytes, const PhotoLimits& limits, Pixels& out) {
    jpeg_decompress_struct cinfo{};
    JpegError error{};
    jpeg_progress_mgr progress{};
    cinfo.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = OnJpegError;
    error.manager.emit_message = OnJpegMessage;
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return std::string("the JPEG cannot be read: ") + error.message;
    }
    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = OnJpegProgress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
                 static_cast<unsigned long>(bytes.size()));
    // APP1 is kept for its Orientation alone; other markers (XMP, ICC, comments) are skipped.
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    for (auto* m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            std::memcmp(m->data, "Exif\0\0", 6) == 0) {
            out.orientation = ExifOrientation(m->data, m->data_length);
            break;
        }
    }
    const std::uint64_t width = cinfo.image_width, height = cinfo.image_height;
    if (width * height > limits.max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        return TooMany(width, height, limits);
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return "the JPEG is in CMYK, which a camera does not make: send the photo as the "
               "camera took it, or as a PNG";
    }
    cinfo.out_color_space = JCS_RGB;
    // libjpeg-turbo scales by n/8 while decoding: the largest n that fits max_side.
    const std::uint64_t side = std::max(width, height);
    unsigned int eighths = 8;
    while (eighths > 1 && (side * eighths + 7) / 8 > static_cast<std::uint64_t>(limits.max_side))
        --eighths;
    cinfo.scale_num = eighths;
    cinfo.scale_denom = 8;
    jpeg_start_decompress(&cinfo);
    out.width = static_cast<int>(cinfo.output_width);
    out.height = static_cast<int>(cinfo.output_height);
    const std::size_t stride = static_cast<std::size_t>(out.width) * 3;
    out.rgb.resize(stride * static_cast<std::size_t>(out.height));
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out.rgb.data() + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (error.cut_short) return "the JPEG is cut short: the upload did not finish; send it again";
    return {};
}

// Decodes a PNG into `out` (RGB; transparency on white); "" or why not.
std::string DecodePng(std::string_view bytes, const PhotoLimits& limits, Pixels& out) {
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()))
        return std::string("the PNG cannot be read: ") + image.message;
    if (static_cast<std::uint64_t>(image.width) * image.height > limits.max_pixels) {
        const std::string why = TooMany(image.width, image.height, limits);
        png_image_free(&image);
        return why;
    }
    image.format = PNG_FORMAT_RGB;
    out.width = static_cast<int>(image.width);
    out.height = static_cast<int>(image.height);
    out.rgb.resize(PNG_IMAGE_SIZE(image));
    png_color white{255, 255, 255};
    if (!png_image_finish_read(&image, &white, out.rgb.data(), 0, nullptr)) {
        const std::string why = std::string("the PNG cannot be read: ") + image.message;
        png_image_free(&image);
        return why;
    }
    return {};
}

// Smaller by a whole factor, each new pixel the mean of the old ones it covers.
Pixels Shrink(const Pixels& in, int factor) {
    Pixels out;
    out.width = (in.width + factor - 1) / factor;
    out.height = (in.height + factor - 1) / factor;
    out.rgb.assign(static_cast<std::size_t>(out.width) * static_cast<std::size_t>(out.height) * 3,
                   0);
    for (int y = 0; y < out.height; ++y) {
        for (int x = 0; x < out.width; ++x) {
            unsigned long sum[3] = {0, 0, 0}, n = 0;
            for (int dy = 0; dy < factor && y * factor + dy < in.height; ++dy) {
                for (int dx = 0; dx < factor && x * factor + dx < in.width; ++dx) {
                    const std::size_t at = (static_cast<std::size_t>(y * factor + dy) *
                                                static_cast<std::size_t>(in.width) +
                                            static_cast<std::size_t>(x * factor + dx)) *
                                           3;
                    for (int c = 0; c < 3; ++c) sum[c] += in.rgb[at + static_cast<std::size_t>(c)];
                    ++n;
                }
            }
            const std::size_t to =
                (static_cast<std::size_t>(y) * static_cast<std::size_t>(out.width) +
                 static_cast<std::size_t>(x)) *
                3;
            for (int c = 0; c < 3; ++c)
                out.rgb[to + static_cast<std::size_t>(c)] = static_cast<unsigned char>(sum[c] / n);
        }
    }
    return out;
}

// A baseline JPEG of the pixels alone: a JFIF header, no other marker.
std::string EncodeJpeg(const Pixels& in, int quality, std::string& why) {
    jpeg_compress_struct cinfo{};
    JpegError error{};
    unsigned char* buffer = nullptr;
    unsigned long size = 0;
    cinfo.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = OnJpegError;
    error.manager.emit_message = OnJpegMessage;
    if (setjmp(error.jump)) {
        jpeg_destroy_compress(&cinfo);
        std::free(buffer);
        why = std::string("the photo cannot be written: ") + error.message;
        return {};
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = static_cast<JDIMENSION>(in.width);
    cinfo.image_height = static_cast<JDIMENSION>(in.height);
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    const std::size_t stride = static_cast<std::size_t>(in.width) * 3;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<unsigned char*>(in.rgb.data()) + stride * cinfo.next_scanline;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    std::string out(reinterpret_cast<const char*>(buffer), size);
    jpeg_destroy_compress(&cinfo);
    std::free(buffer);
    return out;
}

// "5 MB", "300 KB", "900 bytes".
std::string Size(std::size_t bytes) {
    if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0)
        return std::to_string(bytes / 1024 / 1024) + " MB";
    if (bytes >= 1024) return std::to_string(bytes / 1024) + " KB";
    return std::to_string(bytes) + " bytes";
}

}  // namespace

std::string_view SniffPhotoType(std::string_view bytes) {
    if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
        static_cast<unsigned char>(bytes[1]) == 0xD8 &&
        static_cast<unsigned char>(bytes[2]) == 0xFF)
        return "image/jpeg";
    if (bytes.size() >= 8 && bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8))
        return "image/png";
    return {};
}

Result<CleanPhoto> CleanUpload(std::string_view upload, const PhotoLimits& limits) {
    if (upload.size() > limits.max_bytes) {
        return Error{"the photo is " + Size(upload.size()) + ", more than the " +
                     Size(limits.max_bytes) + " a photo may be"};
    }
    const std::string_view type = SniffPhotoType(upload);
    if (type.empty()) {
        return Error{
            "the file is not a JPEG or PNG photo (its content says so, whatever its name): "
            "take a photo with the camera, or save it as JPEG or PNG"};
    }
    Pixels pixels;
    const std::string why = type == "image/jpeg" ? DecodeJpeg(upload, limits, pixels)
                                                 : DecodePng(upload, limits, pixels);
    if (!why.empty()) return Error{why};
    if (pixels.width <= 0 || pixels.height <= 0) return Error{"the photo has no pixels"};
    pixels = Upright(pixels);
    const int side = std::max(pixels.width, pixels.height);
    if (side > limits.max_side)
        pixels = Shrink(pixels, (side + limits.max_side - 1) / limits.max_side);
    std::string problem;
    CleanPhoto photo;
    photo.jpeg = EncodeJpeg(pixels, limits.quality, problem);
    if (!problem.empty()) return Error{problem};
    photo.width = pixels.width;
    photo.height = pixels.height;
    photo.source_type = std::string(type);
    return photo;
}

}  // namespace ldis::engine
