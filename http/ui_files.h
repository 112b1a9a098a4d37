/* The dashboard's files (http/ui/), embedded at build time by
 * scripts/embed.py into a generated C source (http/meson.build). */
#ifndef ROTA_HTTP_UI_FILES_H
#define ROTA_HTTP_UI_FILES_H

#include <stddef.h>

struct ui_file
{
    const char *name;         /* "index.html", "app.js", ... */
    const char *content_type; /* From the extension. */
    const char *etag;         /* Quoted: "\"<16 hex>\"". */
    const unsigned char *data;
    size_t len;
};

extern const struct ui_file http__ui_files[];
extern const size_t http__n_ui_files;

#endif
