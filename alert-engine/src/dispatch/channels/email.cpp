// The email channel: a maildir (the demo, tests) or SMTP through curl, at most two
// transfers per connection handed to curl at once.
#include "../impl.hpp"

namespace ldis::engine {

// The JPEGs of the photos an email shows (issue 17 §3). Photos never change, so the last
// few are kept: a version with photos goes to every partner at once.
void Dispatcher::Impl::PutPhotos(EmailMessage& m) {
    for (auto& image : m.images) {
        const auto cached = std::find_if(photo_cache_.begin(), photo_cache_.end(),
                                         [&](const auto& p) { return p.first == image.photo_id; });
        if (cached != photo_cache_.end()) {
            image.jpeg = *cached->second;
            continue;
        }
        if (!options_.photo) continue;
        auto jpeg = options_.photo(image.photo_id);
        if (!jpeg) {
            spdlog::warn("email: photo {} is no longer kept; the email goes without it",
                         image.photo_id);
            continue;
        }
        image.jpeg = *jpeg;
        if (photo_cache_.size() >= 6) photo_cache_.erase(photo_cache_.begin());
        photo_cache_.emplace_back(image.photo_id,
                                  std::make_shared<const std::string>(std::move(*jpeg)));
    }
}

void Dispatcher::Impl::WriteMaildir(const OutboxItem& item) {
    EmailMessage m = RenderEmail(options_.templates, item, ContextFor(item));
    PutPhotos(m);
    const std::string mime = m.ToMime(options_.from, item.address, NowMs());
    std::string name = IdempotencyKey(item);
    const fs::path tmp = fs::path(maildir_) / "tmp" / (name + ".eml");
    const fs::path done = fs::path(maildir_) / "new" / (name + ".eml");
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << mime;
        out.flush();
        if (!out) {
            return Record(
                {item.id, DeliveryOutcome::Kind::kRetry, "cannot write " + tmp.string(), -1});
        }
    }
    std::error_code ec;
    fs::rename(tmp, done, ec);
    if (ec) return Record({item.id, DeliveryOutcome::Kind::kRetry, ec.message(), -1});
    Record({item.id, DeliveryOutcome::Kind::kDelivered, "", -1});
}

// libcurl keeps transfers beyond CURLMOPT_MAX_HOST_CONNECTIONS in a pending list that it
// walks again and again: with 256 emails handed over at once, a 10,000-email fan-out ran
// at 3,600/s; with two per connection it runs at ~4,800/s. The rest wait here, claimed
// (rows `sending`, so sent again after a crash), and are rendered only when they go.
//
// A version's first emails (claimed at the commit that made it) go in behind the firsts
// already waiting and ahead of the rest: first in first out, a second red alert's first
// partner waited for every email left of the first alert's fan-out (100 recipients: ~45 ms
// with a fast relay, seconds with a slow one).
void Dispatcher::Impl::SendSmtp(OutboxItem item, bool first) {
    if (first) {
        smtp_waiting_.insert(smtp_waiting_.begin() + static_cast<std::ptrdiff_t>(smtp_firsts_),
                             std::move(item));
        ++smtp_firsts_;
    } else {
        smtp_waiting_.push_back(std::move(item));
    }
    LaunchWaitingSmtp();
}

void Dispatcher::Impl::LaunchWaitingSmtp() {
    const std::size_t limit = static_cast<std::size_t>(options_.smtp_connections) * 2;
    while (!stopping_ && !smtp_waiting_.empty() && smtp_active_ < limit) {
        OutboxItem item = std::move(smtp_waiting_.front());
        smtp_waiting_.pop_front();
        if (smtp_firsts_ > 0) --smtp_firsts_;
        ++smtp_active_;
        LaunchSmtp(std::move(item));
    }
}

void Dispatcher::Impl::LaunchSmtp(OutboxItem item) {
    Launch(PrepareSmtp(std::move(item)));
}

std::unique_ptr<Dispatcher::Impl::Transfer> Dispatcher::Impl::PrepareSmtp(OutboxItem item) {
    const auto rendering = std::chrono::steady_clock::now();
    EmailMessage m = RenderEmail(options_.templates, item, ContextFor(item));
    PutPhotos(m);
    auto t = NewTransfer(std::move(item), Protocol::kSmtp);
    t->upload = m.ToMime(options_.from, t->item.address, NowMs());
    Observe(Stage::kRender, std::chrono::steady_clock::now() - rendering);
    CURL* e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, options_.smtp_url.c_str());
    const std::string from = "<" + EmailAddressOf(options_.from) + ">";
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from.c_str());
    t->recipients = curl_slist_append(nullptr, ("<" + t->item.address + ">").c_str());
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, t->recipients);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, &Impl::ReadUpload);
    curl_easy_setopt(e, CURLOPT_READDATA, t.get());
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t->upload.size()));
    if (options_.smtp_starttls)
        curl_easy_setopt(e, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    if (!options_.smtp_username.empty()) {
        curl_easy_setopt(e, CURLOPT_USERNAME, options_.smtp_username.c_str());
        curl_easy_setopt(e, CURLOPT_PASSWORD, options_.smtp_password.c_str());
    }
    if (!options_.smtp_ca_file.empty())
        curl_easy_setopt(e, CURLOPT_CAINFO, options_.smtp_ca_file.c_str());
    return t;
}

}  // namespace ldis::engine
