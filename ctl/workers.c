/* rotactl workers: the registered workers (GET /v1/workers). */

#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

int ctl_cmd_workers(struct ctl *ctl, int argc, char **argv)
{
    json_t *out = NULL, *w;
    size_t i;
    int rv;

    if (argc > 1) {
        fprintf(stderr, "rotactl workers: unexpected argument \"%s\"\n",
                argv[1]);
        return CTL_EXIT_USAGE;
    }
    rv = ctl_get_table(ctl, "/v1/workers", &out);
    if (rv != 0 || out == NULL) {
        return rv;
    }
    printf("%-20s %-16s  %-5s  %-16s %-16s %7s  %s\n", "NAME", "ID", "STATE",
           "QUEUES", "TYPES", "RUNNING", "LAST HEARTBEAT");
    json_array_foreach(json_object_get(out, "workers"), i, w)
    {
        char running[32], age[32];
        const char *types = json_string_value(json_object_get(w, "types"));
        snprintf(running, sizeof running, "%lld/%lld", ctl_int(w, "running"),
                 ctl_int(w, "concurrency"));
        ctl_age(w, "last_heartbeat", age, sizeof age);
        printf("%-20s %-16s  %-5s  %-16s %-16s %7s  %s\n", ctl_str(w, "name"),
               ctl_str(w, "id"), ctl_str(w, "state"), ctl_str(w, "queues"),
               types != NULL && types[0] == '\0' ? "all-but-shell"
                                                 : ctl_str(w, "types"),
               running, age);
    }
    json_decref(out);
    return 0;
}
