#include "ldis/engine/cap.hpp"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include <cstdarg>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

namespace ldis::engine {

namespace sql {
extern const char* const kCapSchemaXsd;  // docs/standards/CAP-v1.2.xsd, compiled in
}

namespace {

constexpr std::size_t kMaxCapBytes = 256 * 1024;
constexpr const char* kCapNs = "urn:oasis:names:tc:emergency:cap:1.2";

struct DocFree {
    void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
struct SchemaFree {
    void operator()(xmlSchema* s) const { xmlSchemaFree(s); }
};
struct ValidFree {
    void operator()(xmlSchemaValidCtxt* v) const { xmlSchemaFreeValidCtxt(v); }
};

// libxml2's messages are collected, not printed to stderr.
void Collect(void* ctx, const char* format, ...) {
    auto* out = static_cast<std::string*>(ctx);
    char buf[512];
    va_list args;
    va_start(args, format);
    vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    if (out->size() < 600) *out += buf;
}

// The schema, parsed once.
const xmlSchema* CapSchema() {
    static std::once_flag once;
    static std::unique_ptr<xmlSchema, SchemaFree> schema;
    std::call_once(once, [] {
        const std::string_view xsd(sql::kCapSchemaXsd);
        xmlSchemaParserCtxtPtr parser =
            xmlSchemaNewMemParserCtxt(xsd.data(), static_cast<int>(xsd.size()));
        schema.reset(xmlSchemaParse(parser));
        xmlSchemaFreeParserCtxt(parser);
    });
    return schema.get();
}

std::string Text(const xmlNode* node) {
    std::string out;
    for (const xmlNode* c = node->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
            out += reinterpret_cast<const char*>(c->content);
    }
    return out;
}

bool Is(const xmlNode* n, const char* name) {
    return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           std::string_view(reinterpret_cast<const char*>(n->ns->href)) == kCapNs &&
           std::string_view(reinterpret_cast<const char*>(n->name)) == name;
}

const xmlNode* Child(const xmlNode* parent, const char* name) {
    for (const xmlNode* c = parent->children; c; c = c->next)
        if (Is(c, name)) return c;
    return nullptr;
}

}  // namespace

Result<FederatedVersion> ReadCap(std::string_view xml) {
    if (xml.empty()) return Error{"the CAP document is empty"};
    if (xml.size() > kMaxCapBytes)
        return Error{"the CAP document is " + std::to_string(xml.size()) +
                     " bytes, over the 262144 a drug alert needs"};
    const xmlSchema* schema = CapSchema();
    if (schema == nullptr) return Error{"the CAP 1.2 schema compiled into ldisd does not parse"};
    std::string problems;
    // No DTD loading, no entity substitution, no network: XXE and billion laughs refused.
    const int options =
        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS;
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (ctxt == nullptr) return Error{"out of memory reading the CAP document"};
    std::unique_ptr<xmlDoc, DocFree> doc(xmlCtxtReadMemory(
        ctxt, xml.data(), static_cast<int>(xml.size()), "cap.xml", "UTF-8", options));
    const bool well_formed = ctxt->wellFormed != 0;
    xmlFreeParserCtxt(ctxt);
    if (!doc || !well_formed) return Error{"the CAP document is not well-formed XML"};
    if (doc->intSubset != nullptr || doc->extSubset != nullptr)
        return Error{"the CAP document has a DOCTYPE, which CAP does not use: refused"};
    std::unique_ptr<xmlSchemaValidCtxt, ValidFree> valid(
        xmlSchemaNewValidCtxt(const_cast<xmlSchema*>(schema)));
    xmlSchemaSetValidErrors(valid.get(), Collect, Collect, &problems);
    if (xmlSchemaValidateDoc(valid.get(), doc.get()) != 0) {
        while (!problems.empty() && (problems.back() == '\n' || problems.back() == ' '))
            problems.pop_back();
        return Error{"the CAP document is not valid CAP 1.2: " + problems};
    }
    const xmlNode* alert = xmlDocGetRootElement(doc.get());
    const xmlNode* info = Child(alert, "info");
    if (info == nullptr) return Error{"the CAP alert has no <info>: nothing to tell partners"};
    FederatedVersion v;
    v.identifier = Text(Child(alert, "identifier"));
    v.msg_type = Text(Child(alert, "msgType"));
    v.cap_status = Text(Child(alert, "status"));
    v.sent = Text(Child(alert, "sent"));
    if (const xmlNode* n = Child(info, "headline")) v.headline = Text(n);
    if (const xmlNode* n = Child(info, "description")) v.description = Text(n);
    if (const xmlNode* n = Child(info, "instruction")) v.instruction = Text(n);
    if (const xmlNode* n = Child(info, "audience")) v.audience = Text(n);
    std::string level, version;
    for (const xmlNode* c = info->children; c; c = c->next) {
        if (!Is(c, "parameter")) continue;
        const std::string name = Text(Child(c, "valueName")), value = Text(Child(c, "value"));
        if (name == "LDIS-reference") v.reference = value;
        if (name == "LDIS-version") version = value;
        if (name == "LDIS-level") level = value;
        if (name == "LDIS-authority") v.authority = value;
        if (name == "LDIS-district") v.district = value;
        if (name == "LDIS-family") v.family = value;
    }
    if (v.reference.empty() || version.empty() || level.empty() || v.authority.empty() ||
        v.district.empty())
        return Error{
            "the CAP alert lacks the LDIS-reference, LDIS-version, LDIS-level, "
            "LDIS-authority and LDIS-district parameters a receiving LDIS routes by"};
    if (!ParseLevel(level, v.level) || v.level == Level::kNone)
        return Error{"LDIS-level \"" + level + "\" is not red, amber or green"};
    if (version.size() > 6 || version.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(version) < 1)
        return Error{"LDIS-version \"" + version + "\" is not a version number"};
    v.version = std::stoi(version);
    if (v.identifier != v.reference + "-v" + version)
        return Error{"the CAP identifier \"" + v.identifier + "\" is not " + v.reference + "-v" +
                     version + ", as its LDIS parameters say"};
    if (v.cap_status == "Draft" || v.cap_status == "System")
        return Error{"a CAP alert of status " + v.cap_status + " is not offered to peers"};
    v.cap = std::string(xml);
    return v;
}

}  // namespace ldis::engine
