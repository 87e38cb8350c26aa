/* duosign-oidc: the login page (oidc.h): the service's name, the
 * verification code, the QR code of the link the citizen's device claims
 * (libqrencode, inline SVG), and a little script that long-polls
 * /login/poll and follows the redirect it gets. Without JavaScript the page
 * still shows the code and QR; the citizen reloads the service's login. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <qrencode.h>

#include "jose.h"
#include "oidc.h"

/* The QR code as one SVG path of unit squares (4-module quiet zone). */
static char *qr_svg(const char *text) {
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    char *svg = NULL;
    size_t cap, o = 0;
    if (q == NULL) return NULL;
    int w = q->width, full = w + 8;
    cap = (size_t)w * (size_t)w * 24 + 512;
    if ((svg = malloc(cap)) == NULL) goto out;
    o += (size_t)snprintf(svg, cap,
                          "<svg id=\"qr\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
                          "height=\"%d\" shape-rendering=\"crispEdges\"><rect width=\"%d\" height=\"%d\" "
                          "fill=\"#fff\"/><path fill=\"#000\" d=\"",
                          full, full, full * 6, full * 6, full, full);
    for (int y = 0; y < w; y++)
        for (int x = 0; x < w; x++)
            if (q->data[y * w + x] & 1) o += (size_t)snprintf(svg + o, cap - o, "M%d %dh1v1h-1z", x + 4, y + 4);
    snprintf(svg + o, cap - o, "\"/></svg>");
out:
    QRcode_free(q);
    return svg;
}

/* The page's style and script are fixed texts, so the Content-Security-
 * Policy can name them by hash: no other script or style runs on the page,
 * whatever a name or link might smuggle in. The per-page values (txn, csrf)
 * are data attributes the script reads. */
#define PAGE_STYLE                                                                  \
    "body{font-family:sans-serif;max-width:30em;margin:2em auto;text-align:center}" \
    "#vc{font-size:3em;letter-spacing:.2em;font-weight:bold}#status{min-height:3em}.bad{color:#a00}"

#define PAGE_SCRIPT                                                                                                \
    "(function(){var d=document.body.dataset,st=document.getElementById('status');"                                \
    "function poll(){var x=new XMLHttpRequest();x.open('POST','/login/poll');"                                     \
    "x.setRequestHeader('Content-Type','application/x-www-form-urlencoded');"                                      \
    "x.onload=function(){var a;try{a=JSON.parse(x.responseText)}catch(e){a={status:'error',message:'bad answer'}}" \
    "st.textContent=a.message;if(a.status==='waiting'){setTimeout(poll,200);return}"                               \
    "if(a.status==='done'){location.replace(a.redirect);return}st.className='bad';"                                \
    "if(a.redirect){var b=document.createElement('a');b.id='back';b.href=a.redirect;"                              \
    "b.textContent='Back to the service';st.appendChild(document.createElement('br'));st.appendChild(b)}};"        \
    "x.onerror=function(){setTimeout(poll,2000)};x.send('txn='+d.txn+'&csrf='+d.csrf)}poll()})();"

#define PAGE_FMT                                                                                \
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"                           \
    "<meta name=\"viewport\" content=\"width=device-width\"><title>Log in with duosign</title>" \
    "<style>" PAGE_STYLE "</style></head><body data-txn=\"%s\" data-csrf=\"%s\">"               \
    "<h1>Log in to <span id=\"service\">%s</span></h1>"                                         \
    "<p>Scan the code with your duosign app, check that it shows this number, and approve.</p>" \
    "<p id=\"vc\">%s</p>%s"                                                                     \
    "<p><a id=\"link\" href=\"%s\">Open in the duosign app on this device</a></p>"              \
    "<p id=\"status\">Waiting for your approval (expires in %lld s).</p>"                       \
    "<noscript><p>This page needs its small script to notice your approval.</p></noscript>"     \
    "<script>" PAGE_SCRIPT "</script></body></html>"

static void csp_hash(char *out, size_t cap, const char *text) {
    uint8_t h[32];
    SHA256((const unsigned char *)text, strlen(text), h);
    jose_b64url(out, cap, h, sizeof h);
    for (char *p = out; *p; p++) *p = *p == '-' ? '+' : *p == '_' ? '/' : *p; /* CSP wants base64, padded */
    strncat(out, "=", cap - strlen(out) - 1);
}

void login_page_csp(char *out, size_t cap) {
    char sh[64], ch[64];
    csp_hash(sh, sizeof sh, PAGE_SCRIPT);
    csp_hash(ch, sizeof ch, PAGE_STYLE);
    snprintf(out, cap,
             "default-src 'none'; script-src 'sha256-%s'; style-src 'sha256-%s'; connect-src 'self'; "
             "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
             sh, ch);
}

char *login_page_html(const char *client_name, const char *vc, const char *link, const char *txn, const char *csrf,
                      int64_t expires_in) {
    char *name = oidc_html_escape(client_name), *lk = oidc_html_escape(link), *svg = qr_svg(link), *html = NULL;
    /* txn and csrf are base64url: nothing in them closes the attribute. */
    if (name && lk && svg) {
        size_t cap = sizeof PAGE_FMT + strlen(name) + strlen(lk) + strlen(svg) + 256;
        if ((html = malloc(cap)) != NULL)
            snprintf(html, cap, PAGE_FMT, txn, csrf, name, vc, svg, lk, (long long)expires_in);
    }
    free(name);
    free(lk);
    free(svg);
    return html;
}
