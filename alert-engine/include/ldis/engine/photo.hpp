#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ldis/engine/result.hpp"

namespace ldis::engine {

// A photo of a batch (issue 17 §3): what a clinician uploads is never kept or sent as it
// came. Its type is read from its first bytes (a name or a Content-Type says nothing), its
// size is checked from its header before any pixel is decoded (a decompression bomb is
// refused), it is decoded by libjpeg-turbo or libpng and written anew as a baseline JPEG of
// its pixels alone: no EXIF (so no GPS position, camera, owner or time), no XMP, ICC,
// comments or PNG text chunks, at most `max_side` pixels on its longer side.

struct PhotoLimits {
    std::size_t max_bytes = 5 * 1024 * 1024;  // an upload larger than this is refused
    std::uint64_t max_pixels = 50'000'000;    // width × height as the header declares it
    int max_side = 2048;                      // the kept photo's longer side, at most
    int quality = 85;                         // of the JPEG written
};

struct CleanPhoto {
    std::string jpeg;  // the bytes kept and sent: image/jpeg
    int width = 0;
    int height = 0;
    std::string source_type;  // what the upload was: "image/jpeg" or "image/png"
};

// "image/jpeg" or "image/png" from the first bytes, else "". Pure.
std::string_view SniffPhotoType(std::string_view bytes);

// The upload cleaned, or why it cannot be: too large, not a JPEG or PNG whatever it is
// called, too many pixels, damaged. Never throws; thread-safe.
Result<CleanPhoto> CleanUpload(std::string_view upload, const PhotoLimits& limits = {});

}  // namespace ldis::engine
