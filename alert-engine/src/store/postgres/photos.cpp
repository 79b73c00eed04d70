// Photos of a batch on PostgreSQL (issue 17 §3), as the SQLite store keeps them
// (store/photos.cpp): cleaned JPEGs in a bytea column, named by reports.
#include <boost/json.hpp>

#include "../sql/photos_sql.hpp"
#include "ldis/engine/codec.hpp"
#include "store_impl.hpp"

namespace ldis::engine {

using pgstore::Int;

namespace {

using photos_sql::kColumns;
using photos_sql::kOfAlerts;

// bytea as text: "\x" and two hex digits a byte, each way (libpq's text format).
std::string FromHex(std::string_view hex) {
    const auto digit = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    std::string out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<char>(digit(hex[i]) * 16 + digit(hex[i + 1])));
    return out;
}

}  // namespace

PhotoRow pgstore::PhotoOf(const pg::Rows& rows, int i) {
    return {std::string(rows.text(i, 0)),
            std::string(rows.text(i, 1)),
            std::string(rows.text(i, 2)),
            std::string(rows.text(i, 3)),
            std::string(rows.text(i, 4)),
            static_cast<int>(rows.integer(i, 5)),
            static_cast<int>(rows.integer(i, 6)),
            rows.integer(i, 7),
            rows.integer(i, 8)};
}

Result<PhotoRow> PostgresStore::SavePhoto(const std::string& jpeg, int width, int height,
                                          std::string_view uploaded_by) {
    PhotoRow row{"ph-" + Hex(RandomBytes(16)),
                 "",
                 std::string(uploaded_by),
                 Sha256Hex(jpeg),
                 Sha1Hex(jpeg),
                 width,
                 height,
                 static_cast<std::int64_t>(jpeg.size()),
                 NowMs()};
    std::lock_guard lock(impl_->intake->mutex());
    auto done = impl_->intake->Transaction(
        [&] {
            impl_->intake->Run(
                "store the photo",
                "INSERT INTO photos (id, uploaded_by, sha256, sha1, width, height, "
                "bytes, created_at_ms, jpeg) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                "$8, $9::bytea)",
                {row.id, row.uploaded_by, row.sha256, row.sha1, Int(width), Int(height),
                 Int(row.bytes), Int(row.created_at_ms), "\\x" + Hex(jpeg)});
            impl_->intake->Audit(row.uploaded_by, "photo.uploaded", row.id,
                                 boost::json::serialize(boost::json::object{{"sha256", row.sha256},
                                                                            {"bytes", row.bytes}}));
        },
        row.created_at_ms);
    if (!done.ok()) return done.error();
    return row;
}

std::optional<std::pair<PhotoRow, std::string>> PostgresStore::FindPhoto(std::string_view id,
                                                                         bool with_jpeg) const {
    std::lock_guard lock(impl_->reader->mutex());
    auto r = pg::Exec(impl_->reader->c(), "find the photo",
                      std::string("SELECT ") + kColumns +
                          (with_jpeg ? ", encode(p.jpeg, 'hex')" : ", ''") +
                          " FROM photos p WHERE p.id = $1",
                      {std::string(id)});
    if (!r.ok() || r.value().size() == 0) return std::nullopt;
    return std::pair{pgstore::PhotoOf(r.value(), 0), FromHex(r.value().text(0, 9))};
}

std::vector<PhotoRow> PostgresStore::AlertPhotos(std::string_view reference) const {
    std::lock_guard lock(impl_->reader->mutex());
    auto r = pg::Exec(impl_->reader->c(), "list the alert's photos",
                      std::string("SELECT ") + kColumns + kOfAlerts +
                          "WHERE a.reference = $1 ORDER BY p.created_at_ms, p.id",
                      {std::string(reference)});
    std::vector<PhotoRow> out;
    if (!r.ok()) return out;
    for (int i = 0; i < r.value().size(); ++i) out.push_back(pgstore::PhotoOf(r.value(), i));
    return out;
}

}  // namespace ldis::engine
