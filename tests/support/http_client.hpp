#pragma once

#include <map>
#include <string>
#include <vector>

namespace ldis::test {

// One HTTP exchange as a test client saw it.
struct HttpResponse {
    long status = 0;  // 0 when no response came
    std::string body;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string error;                           // curl's, when status is 0
};

// A blocking HTTP request with libcurl (the test's own client, not ldisd's code).
HttpResponse HttpRequest(const std::string& method, const std::string& url,
                         const std::string& body = {},
                         const std::vector<std::string>& headers = {});

// A form page as a browser holds it before posting: the pre-session cookie ldisd set (as a
// "Cookie: name=value" header, or "" when none was set) and the form's hidden csrf value.
struct FormPage {
    HttpResponse response;
    std::string cookie;
    std::string csrf;
};
FormPage OpenForm(const std::string& url, const std::vector<std::string>& headers = {});

// Signs in at `base`/login with an access key the way a browser does (the form first,
// then the post); returns the session's "Cookie: ..." header, or "" when refused.
std::string SignIn(const std::string& base, const std::string& key);

}  // namespace ldis::test
