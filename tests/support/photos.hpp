#pragma once
// Photos as a phone or a careless tool makes them, for the tests of the photo path (issue 17
// §3): a JPEG with EXIF holding a GPS position and the owner's name and a comment, a PNG with
// text and EXIF chunks, a PNG header claiming a bomb's size; and what of those survives.

#include <set>
#include <string>

namespace ldis::test {

// The owner's name and the GPS latitude (51° 23' 20.40" N, Chatham) as the EXIF holds them.
extern const std::string kPhotoOwner;
extern const std::string kPhotoLatitude;

// EXIF ("Exif\0\0" and TIFF) with the owner (Artist) and a GPS IFD.
std::string ExifWithGps();
// EXIF with IFD0's Orientation alone (1 to 8 as EXIF has them; any other number too), in
// Intel ("II") or Motorola ("MM", as an iPhone writes it) byte order.
std::string ExifWithOrientation(int orientation, bool motorola = false);
// A JPEG of a gradient, `exif` written as its APP1 segment and a comment naming the owner.
std::string MakeJpeg(int width, int height, const std::string& exif, bool progressive = false);
// A PNG with transparency, a tEXt chunk naming the owner and an eXIf chunk with GPS.
std::string MakePng(int width, int height);
// A PNG whose header claims `width` by `height`, with one tiny IDAT: a bomb's shape.
std::string PngClaiming(unsigned width, unsigned height);
// The markers of a JPEG up to its image data (SOS).
std::set<int> Markers(const std::string& jpeg);
// What besides the pixels is in a JPEG: markers other than a plain encoder's (JFIF, tables,
// frame, scan), EXIF, the owner's name, the GPS latitude. "" when nothing.
std::string Leftovers(const std::string& jpeg);

}  // namespace ldis::test
