#include "support/http_client.hpp"

#include <curl/curl.h>

#include <algorithm>

namespace ldis::test {
namespace {

std::size_t OnBody(char* data, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

std::size_t OnHeader(char* data, std::size_t size, std::size_t n, void* out) {
    std::string line(data, size * n);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
        (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
    }
    return size * n;
}

}  // namespace

HttpResponse HttpRequest(const std::string& method, const std::string& url, const std::string& body,
                         const std::vector<std::string>& headers) {
    HttpResponse out;
    CURL* curl = curl_easy_init();
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (method == "POST" || !body.empty()) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &out.headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    const CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
    } else {
        out.error = curl_easy_strerror(rc);
    }
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return out;
}

FormPage OpenForm(const std::string& url, const std::vector<std::string>& headers) {
    FormPage page;
    page.response = HttpRequest("GET", url, {}, headers);
    if (auto it = page.response.headers.find("set-cookie"); it != page.response.headers.end())
        page.cookie = "Cookie: " + it->second.substr(0, it->second.find(';'));
    const std::string mark = "name=\"csrf\" value=\"";
    const auto at = page.response.body.find(mark);
    if (at != std::string::npos) {
        const auto begin = at + mark.size();
        page.csrf = page.response.body.substr(begin, page.response.body.find('"', begin) - begin);
    }
    return page;
}

std::string SignIn(const std::string& base, const std::string& key) {
    const FormPage form = OpenForm(base + "/login");
    const auto res =
        HttpRequest("POST", base + "/login", "next=%2F&csrf=" + form.csrf + "&key=" + key,
                    {form.cookie, "Content-Type: application/x-www-form-urlencoded"});
    const auto it = res.headers.find("set-cookie");
    if (res.status != 303 || it == res.headers.end()) return {};
    return "Cookie: " + it->second.substr(0, it->second.find(';'));
}

}  // namespace ldis::test
