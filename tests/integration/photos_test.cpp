// Photos of a batch end to end (issue 17 §3), over real HTTP against a real ldisd with its
// maildir: a phone's photo with its GPS position and owner in its EXIF is uploaded, named by
// a red report and chosen by a coordinator; then every output is searched for what the EXIF
// held: the photo the API serves, each email's every part (parsed by Python's email package),
// the record, CAP (valid against the OASIS schema, with the photo's size and SHA-1 computed
// here), the partners' photo page and its images. An automatic version carries no photo.
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <signal.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "ldis/engine/codec.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/photos.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;
using ldis::test::HttpRequest;
using ldis::test::HttpResponse;
using ldis::test::Ldisd;
using ldis::test::Mosquitto;
using ldis::test::ParseObject;
using ldis::test::TempDir;

namespace {

std::string Sha1(const std::string& bytes) {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (const unsigned char c : digest) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

// What the EXIF of the upload held, in any of the forms an output could carry it.
std::string Leaks(const std::string& bytes) {
    std::string found;
    for (const auto& [what, needle] : std::vector<std::pair<std::string, std::string>>{
             {"owner", ldis::test::kPhotoOwner},
             {"GPS latitude", ldis::test::kPhotoLatitude},
             {"EXIF", std::string("Exif\0\0", 6)},
             {"owner in base64", ldis::engine::Base64(ldis::test::kPhotoOwner).substr(0, 20)}}) {
        if (bytes.find(needle) != std::string::npos) found += what + "; ";
    }
    return found;
}

struct Part {
    std::string type, content_id, parent, body;
};

class PhotosTest : public ::testing::Test {
protected:
    void SetUp() override {
        daemon_ = std::make_unique<Ldisd>(broker_, dir_, std::vector<std::string>{});
        daemon_->Start();
        url_ = daemon_->http_url();
        for (const char* role : {"submitter", "coordinator"})
            tokens_[role] = daemon_->CreateToken(role, std::string(role) + "@example.org");
    }
    void TearDown() override {
        if (HasFailure()) std::cerr << "ldisd log:\n" << daemon_->log();
        daemon_->Stop(SIGTERM);
    }

    HttpResponse Call(const std::string& method, const std::string& path, const std::string& role,
                      const std::string& body = {}, const std::string& type = "application/json") {
        std::vector<std::string> headers{"Content-Type: " + type};
        if (!role.empty()) headers.push_back("Authorization: Bearer " + tokens_[role]);
        return HttpRequest(method, url_ + path, body, headers);
    }

    // The emails in the maildir, by file name.
    std::map<std::string, std::string> Mail() {
        std::map<std::string, std::string> out;
        const fs::path dir = fs::path(dir_ / "mail") / "new";
        if (!fs::exists(dir)) return out;
        for (const auto& f : fs::directory_iterator(dir))
            out[f.path().filename().string()] = ldis::test::ReadFile(f.path().string());
        return out;
    }

    // An email's leaf parts, decoded by Python's email package.
    std::vector<Part> Parts(const std::string& eml, std::string* top = nullptr) {
        static int n = 0;
        const std::string file = dir_ / ("mail-" + std::to_string(++n) + ".eml");
        std::ofstream(file, std::ios::binary) << eml;
        const std::string prefix = dir_ / ("part-" + std::to_string(n));
        ldis::test::Process py(
            {"/usr/bin/python3", ldis::test::SourcePath("tests/support/mime_parts.py"), file,
             prefix},
            prefix + ".txt");
        EXPECT_EQ(py.Wait(std::chrono::seconds(20)), 0) << ldis::test::ReadFile(prefix + ".txt");
        std::vector<Part> out;
        std::istringstream lines(ldis::test::ReadFile(prefix + ".txt"));
        std::string line;
        while (std::getline(lines, line)) {
            std::vector<std::string> f;
            std::size_t from = 0, tab;
            while ((tab = line.find('\t', from)) != std::string::npos) {
                f.push_back(line.substr(from, tab - from));
                from = tab + 1;
            }
            f.push_back(line.substr(from));
            if (f.size() < 4) continue;
            if (f[0] == "-") {
                if (top) *top = f[1];
                continue;
            }
            out.push_back({f[1], f[2], f[3], ldis::test::ReadFile(prefix + "-" + f[0])});
        }
        return out;
    }

    Mosquitto broker_;
    TempDir dir_;
    std::unique_ptr<Ldisd> daemon_;
    std::string url_;
    std::map<std::string, std::string> tokens_;
};

TEST_F(PhotosTest, APhonesGpsAndOwnerReachNoOutputAndOnlyACoordinatorsChoiceSendsThePhoto) {
    // A phone's photo: EXIF with GPS and the owner, and a comment. The test can fail: the
    // upload holds them.
    const std::string upload = ldis::test::MakeJpeg(1200, 900, ldis::test::ExifWithGps());
    ASSERT_EQ(Leaks(upload), "owner; GPS latitude; EXIF; ");
    // Uploaded by a clinician, as any other type would say it is: the bytes decide.
    const auto uploaded = Call("POST", "/api/v1/photos", "submitter", upload, "image/png");
    ASSERT_EQ(uploaded.status, 201) << uploaded.body;
    const auto photo = ParseObject(uploaded.body);
    const std::string id = ldis::test::StringOf(photo.at("id"));
    ASSERT_TRUE(id.starts_with("ph-")) << uploaded.body;
    EXPECT_EQ(photo.at("width").as_int64(), 1200);
    EXPECT_EQ(photo.at("height").as_int64(), 900);
    EXPECT_TRUE(photo.at("report").is_null());

    // A red report names it.
    auto report = ldis::test::ValidReport(ldis::test::NewUuid());
    report["harms"].as_object()["deaths"] = 1;
    report["photos"] = json::array{json::value(id)};
    const auto submitted = Call("POST", "/api/v1/reports", "submitter", json::serialize(report));
    ASSERT_EQ(submitted.status, 202) << submitted.body;
    const std::string ref = ldis::test::StringOf(ParseObject(submitted.body).at("alert_id"));
    ASSERT_FALSE(ref.empty()) << submitted.body;

    // Only a coordinator sees the photo; what is served is the JPEG kept, never the upload.
    EXPECT_EQ(Call("GET", "/api/v1/photos/" + id, "submitter").status, 403);
    EXPECT_EQ(Call("GET", "/api/v1/photos/" + id, "").status, 401);
    const auto served = Call("GET", "/api/v1/photos/" + id, "coordinator");
    ASSERT_EQ(served.status, 200);
    EXPECT_EQ(served.headers.at("content-type"), "image/jpeg");
    EXPECT_EQ(served.headers.at("x-content-type-options"), "nosniff");
    EXPECT_EQ(served.headers.at("cache-control"), "private, no-store");
    EXPECT_EQ(ldis::test::Leftovers(served.body), "");
    EXPECT_EQ(Leaks(served.body), "");
    EXPECT_EQ(static_cast<std::int64_t>(served.body.size()), photo.at("bytes").as_int64());
    EXPECT_EQ(
        Call("GET", "/api/v1/photos/ph-00000000000000000000000000000000", "coordinator").status,
        404);

    // The record lists it, named by the report; the automatic version carries none.
    auto record = ParseObject(Call("GET", "/api/v1/alerts/" + ref, "coordinator").body);
    ASSERT_EQ(record.at("photos").as_array().size(), 1u);
    EXPECT_EQ(ldis::test::StringOf(record.at("photos").as_array()[0].at("id")), id);
    EXPECT_EQ(ldis::test::StringOf(record.at("photos").as_array()[0].at("report")),
              ldis::test::StringOf(report.at("id")));
    const auto& versions = record.at("versions").as_array();
    for (const auto& v : versions) EXPECT_TRUE(v.at("photos").as_array().empty());
    const auto first = Call("GET", "/api/v1/alerts/" + ref + "/cap", "coordinator");
    EXPECT_EQ(first.body.find("<resource>"), std::string::npos);
    ASSERT_TRUE(ldis::test::Eventually([&] { return !Mail().empty(); }, std::chrono::seconds(20)));
    ASSERT_TRUE(ldis::test::Eventually(
        [&] {
            const auto ds = Call("GET", "/api/v1/alerts/" + ref, "coordinator");
            return ds.body.find("\"queued\"") == std::string::npos &&
                   ds.body.find("\"sending\"") == std::string::npos;
        },
        std::chrono::seconds(20)));
    const auto before = Mail();
    for (const auto& [name, eml] : before) {
        EXPECT_EQ(eml.find("image/jpeg"), std::string::npos) << name;
        EXPECT_EQ(Leaks(eml), "") << name;
    }

    // A coordinator chooses it for an update: each partner's email carries it inline.
    const auto updated =
        Call("POST", "/api/v1/alerts/" + ref + "/update", "coordinator",
             json::serialize(json::object{{"photos", json::array{json::value(id)}}}));
    ASSERT_EQ(updated.status, 200) << updated.body;
    record = ParseObject(Call("GET", "/api/v1/alerts/" + ref, "coordinator").body);
    const auto& latest = record.at("versions").as_array().back().as_object();
    ASSERT_EQ(latest.at("photos").as_array().size(), 1u);
    EXPECT_EQ(ldis::test::StringOf(latest.at("photos").as_array()[0]), id);
    const int version = static_cast<int>(latest.at("version").as_int64());
    const auto settled = [&] {
        const auto ds = Call("GET", "/api/v1/alerts/" + ref, "coordinator");
        return ds.body.find("\"queued\"") == std::string::npos &&
               ds.body.find("\"sending\"") == std::string::npos;
    };
    const std::string marked = "X-LDIS-Version: " + std::to_string(version);
    std::map<std::string, std::string> with;
    ASSERT_TRUE(ldis::test::Eventually(
        [&] {
            with.clear();
            for (const auto& [name, eml] : Mail())
                if (!before.contains(name)) with[name] = eml;
            return std::any_of(
                       with.begin(), with.end(),
                       [&](const auto& m) { return m.second.find(marked) != std::string::npos; }) &&
                   settled();
        },
        std::chrono::seconds(20)));
    with.clear();
    for (const auto& [name, eml] : Mail())
        if (!before.contains(name)) with[name] = eml;
    std::string ack;
    int emails = 0;
    for (const auto& [name, eml] : with) {
        if (eml.find("X-LDIS-Version: " + std::to_string(version)) == std::string::npos ||
            eml.find("X-LDIS-Kind: alert") == std::string::npos)
            continue;
        ++emails;
        EXPECT_EQ(Leaks(eml), "") << name;
        std::string top;
        const auto parts = Parts(eml, &top);
        EXPECT_EQ(top, "multipart/alternative") << name;
        std::vector<std::string> types;
        for (const auto& p : parts) {
            types.push_back(p.type + " in " + p.parent);
            EXPECT_EQ(Leaks(p.body), "") << name << " " << p.type;
            if (p.type == "image/jpeg") {
                EXPECT_EQ(p.content_id, "<" + id + "@ldis>");
                EXPECT_EQ(p.body, served.body) << "the email's photo is the one kept";
            }
            if (p.type == "text/html") {
                // Behind its warning, with its text alternative.
                const auto warning = p.body.find("Content warning:");
                const auto image = p.body.find("src=\"cid:" + id + "@ldis\"");
                EXPECT_NE(warning, std::string::npos);
                EXPECT_NE(image, std::string::npos);
                EXPECT_LT(warning, image);
                EXPECT_NE(p.body.find("alt=\"Photo 1 of 1: the batch reported"), std::string::npos);
            }
            if (p.type == "text/plain") {
                EXPECT_NE(p.body.find("PHOTOS OF THE BATCH"), std::string::npos);
                if (const auto at = p.body.find("/ack/"); at != std::string::npos && ack.empty())
                    ack = p.body.substr(at, p.body.find_first_of("\r\n ", at) - at);
            }
        }
        EXPECT_EQ(types, (std::vector<std::string>{"text/plain in multipart/alternative",
                                                   "text/html in multipart/related",
                                                   "image/jpeg in multipart/related"}))
            << name;
    }
    EXPECT_GE(emails, 1);

    // CAP: the photo as a <resource> with its size and SHA-1, valid against the schema.
    const auto cap = Call("GET", "/api/v1/alerts/" + ref + "/cap", "coordinator");
    ASSERT_EQ(cap.status, 200);
    EXPECT_NE(cap.body.find("<size>" + std::to_string(served.body.size()) + "</size>"),
              std::string::npos)
        << cap.body;
    EXPECT_NE(cap.body.find("<digest>" + Sha1(served.body) + "</digest>"), std::string::npos);
    EXPECT_NE(cap.body.find("<mimeType>image/jpeg</mimeType>"), std::string::npos);
    EXPECT_EQ(Leaks(cap.body), "");
    {
        const std::string file = dir_ / "cap.xml";
        std::ofstream(file) << cap.body;
        ldis::test::Process lint({"/usr/bin/xmllint", "--noout", "--schema",
                                  ldis::test::SourcePath("docs/standards/CAP-v1.2.xsd"), file},
                                 dir_ / "cap.lint");
        EXPECT_EQ(lint.Wait(std::chrono::seconds(20)), 0)
            << ldis::test::ReadFile(dir_ / "cap.lint");
    }

    // The partners' page of photos, opened with the delivery's own token; nothing else.
    ASSERT_FALSE(ack.empty());
    const std::string path = ack.substr(0, ack.find('?'));
    const auto page = HttpRequest("GET", url_ + path + "/photos");
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_LT(page.body.find("Content warning"), page.body.find("<img"));
    const auto image = HttpRequest("GET", url_ + path + "/photos/" + id);
    ASSERT_EQ(image.status, 200);
    EXPECT_EQ(image.body, served.body);
    EXPECT_EQ(
        HttpRequest("GET", url_ + path + "/photos/ph-00000000000000000000000000000000").status,
        404);
    EXPECT_EQ(HttpRequest("GET", url_ + "/ack/not-a-token/photos/" + id).status, 400);
    EXPECT_EQ(Leaks(page.body + image.body), "");

    // And the record as JSON says nothing of it either.
    EXPECT_EQ(Leaks(Call("GET", "/api/v1/alerts/" + ref, "coordinator").body), "");
}

}  // namespace

namespace {

// A form as a browser sends it with files: multipart/form-data (RFC 7578).
struct FormField {
    std::string name, value;
    std::optional<std::string> filename = std::nullopt;  // a file input's
};

std::pair<std::string, std::string> Multipart(const std::vector<FormField>& fields) {
    const std::string boundary = "----WebKitFormBoundaryQ3vX9pL0mR2sT7aZ";
    std::string body;
    for (const auto& f : fields) {
        body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + f.name + "\"";
        if (f.filename)
            body += "; filename=\"" + *f.filename + "\"\r\nContent-Type: application/octet-stream";
        body += "\r\n\r\n" + f.value + "\r\n";
    }
    body += "--" + boundary + "--\r\n";
    return {"Content-Type: multipart/form-data; boundary=" + boundary, body};
}

// The ids of the photos the page offers to keep, as its checkboxes hold them.
std::vector<std::string> KeptOn(const std::string& page) {
    std::vector<std::string> ids;
    const std::string mark = "name=\"photo_id\" type=\"checkbox\" value=\"";
    for (auto at = page.find(mark); at != std::string::npos; at = page.find(mark, at + 1))
        ids.push_back(page.substr(at + mark.size(), 35));
    return ids;
}

}  // namespace

// The report form (issue 17 §3): a clinician who is not signed in attaches photos from a
// phone as a browser sends them. Each is written anew before it is kept, a hostile one is
// refused by name (its name escaped), a form sent back with a mistake keeps the photos
// already attached, a fourth is refused, an unticked one is left out, and what the report
// names carries nothing of the EXIF.
TEST_F(PhotosTest, TheReportFormTakesPhotosWritesThemAnewAndKeepsThemThroughAMistake) {
    const auto page = ldis::test::OpenForm(url_ + "/report");
    ASSERT_EQ(page.response.status, 200);
    EXPECT_NE(page.response.body.find("enctype=\"multipart/form-data\""), std::string::npos);
    EXPECT_NE(page.response.body.find("type=\"file\" accept=\"image/jpeg,image/png\" multiple"),
              std::string::npos);
    const std::string phone = ldis::test::MakeJpeg(1200, 900, ldis::test::ExifWithGps());
    ASSERT_FALSE(Leaks(phone).empty()) << "the upload holds the EXIF, so the test can fail";
    const std::string id = ldis::test::NewUuid();
    std::vector<FormField> report = {{"csrf", page.csrf},
                                     {"id", id},
                                     {"source_type", "hospital"},
                                     {"organisation", "Medway NHS Foundation Trust"},
                                     {"authority", "Medway"},
                                     {"district", "Medway"},
                                     {"cases", "3"},
                                     {"hospitalisations", "2"},
                                     {"deaths", "1"},
                                     {"evidence", "professional"}};
    const auto post = [&](std::vector<FormField> fields) {
        const auto [type, body] = Multipart(fields);
        return HttpRequest("POST", url_ + "/report", body, {page.cookie, type});
    };
    // 1. No substance given: the mistake is shown, the phone's photo kept, the GIF refused.
    auto fields = report;
    fields.push_back({"photos", phone, "IMG_0001.jpg"});
    fields.push_back({"photos", "GIF89a\x01\x00\x01\x00", "<img src=x onerror=alert(1)>.gif"});
    fields.push_back({"photos", "", ""});  // the file input a browser sends empty
    fields.push_back({"photo_id", "ph-0123456789abcdef0123456789abcdef"});  // never uploaded
    const auto first = post(fields);
    EXPECT_EQ(first.status, 422) << first.body.substr(0, 400);
    EXPECT_NE(first.body.find("Enter what the drug is"), std::string::npos);
    EXPECT_NE(first.body.find("&lt;img src=x onerror=alert(1)&gt;.gif: the file is not"),
              std::string::npos)
        << "the refused file is named, escaped";
    EXPECT_EQ(first.body.find("<img src=x"), std::string::npos);
    EXPECT_NE(first.body.find("A photo attached before is no longer kept"), std::string::npos);
    EXPECT_NE(first.body.find("Photo 1: 1200 × 900 pixels"), std::string::npos);
    const auto kept = KeptOn(first.body);
    ASSERT_EQ(kept.size(), 1u) << "the phone's photo alone is kept";
    // 2. Given again with three more: the first two join it, the fourth photo is refused.
    fields = report;
    fields.push_back({"substance", "heroin"});
    fields.push_back({"photo_id", kept[0]});
    for (const char* name : {"bag.png", "wrap.png", "fourth.png"})
        fields.push_back({"photos", ldis::test::MakePng(640, 480), name});
    const auto second = post(fields);
    EXPECT_EQ(second.status, 422) << second.body.substr(0, 400);
    EXPECT_NE(second.body.find("Attach at most 3 photos: fourth.png was not attached"),
              std::string::npos);
    const auto three = KeptOn(second.body);
    ASSERT_EQ(three.size(), 3u);
    EXPECT_EQ(three[0], kept[0]) << "the photo attached first stays first";
    EXPECT_NE(second.body.find("Photo 3: 640 × 480 pixels"), std::string::npos);
    // 3. Sent with the second photo unticked: the report is stored, naming two.
    fields = report;
    fields.push_back({"substance", "heroin"});
    fields.push_back({"photo_id", three[0]});
    fields.push_back({"photo_id", three[2]});
    const auto third = post(fields);
    ASSERT_EQ(third.status, 200) << third.body.substr(0, 400);
    EXPECT_NE(third.body.find("Report received"), std::string::npos);
    const auto at = third.body.find("id=\"alert\">");
    ASSERT_NE(at, std::string::npos) << "a red report makes an alert";
    const std::string ref = third.body.substr(at + 11, third.body.find('<', at) - at - 11);
    // The coordinator's record names the two photos ticked, of this report, and no other.
    const auto alert = Call("GET", "/api/v1/alerts/" + ref, "coordinator");
    ASSERT_EQ(alert.status, 200) << alert.body;
    const auto photos = ParseObject(alert.body).at("photos").as_array();
    ASSERT_EQ(photos.size(), 2u) << alert.body;
    EXPECT_EQ(ldis::test::StringOf(photos[0].at("id")), three[0]);
    EXPECT_EQ(ldis::test::StringOf(photos[1].at("id")), three[2]);
    for (const auto& p : photos) {
        const auto jpeg =
            Call("GET", "/api/v1/photos/" + ldis::test::StringOf(p.at("id")), "coordinator");
        ASSERT_EQ(jpeg.status, 200);
        EXPECT_EQ(Leaks(jpeg.body), "");
        EXPECT_EQ(ldis::test::Leftovers(jpeg.body), "");
    }
    EXPECT_EQ(Leaks(alert.body), "");
}
