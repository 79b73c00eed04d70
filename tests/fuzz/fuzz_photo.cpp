// libFuzzer: the photo cleaner on any upload. It must not crash, hang or leak; what it keeps
// must be a JPEG that it reads again at the same size, with no marker but the encoder's own.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ldis/engine/photo.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ldis::engine::PhotoLimits limits;
    limits.max_pixels = 4'000'000;  // small, so that each run stays fast
    limits.max_side = 512;
    const std::string upload(reinterpret_cast<const char*>(data), size);
    const auto clean = ldis::engine::CleanUpload(upload, limits);
    if (!clean.ok()) return 0;
    const std::string& jpeg = clean.value().jpeg;
    if (ldis::engine::SniffPhotoType(jpeg) != "image/jpeg") __builtin_trap();
    if (jpeg.find("Exif") != std::string::npos) __builtin_trap();
    for (std::size_t at = 2;
         at + 4 <= jpeg.size() && static_cast<unsigned char>(jpeg[at]) == 0xFF;) {
        const int marker = static_cast<unsigned char>(jpeg[at + 1]);
        if (marker == 0xDA) break;
        if (marker != 0xE0 && marker != 0xDB && marker != 0xC0 && marker != 0xC4 && marker != 0xDD)
            __builtin_trap();  // an APPn, a comment: something besides the pixels survived
        at += 2 + (static_cast<std::size_t>(static_cast<unsigned char>(jpeg[at + 2])) << 8) +
              static_cast<unsigned char>(jpeg[at + 3]);
    }
    const auto again = ldis::engine::CleanUpload(jpeg, limits);
    if (!again.ok() || again.value().width != clean.value().width) __builtin_trap();
    return 0;
}
