#include <string.h>

#include "fsm/fsm.h"

static const char *const names[] = {
    NULL,      "scheduled", "waiting", "pending",
    "running", "completed", "failed",  "cancelled",
};

const char *fsm_status_name(int status)
{
    return status >= 1 && status <= FSM_STATUS_MAX ? names[status] : NULL;
}

int fsm_status_parse(const char *name)
{
    if (strcmp(name, "queued") == 0) {
        return FSM_PENDING;
    }
    if (strcmp(name, "in-progress") == 0) {
        return FSM_RUNNING;
    }
    for (int i = 1; i <= FSM_STATUS_MAX; i++) {
        if (strcmp(name, names[i]) == 0) {
            return i;
        }
    }
    return 0;
}

bool fsm_status_is_final(int status)
{
    return status == FSM_COMPLETED || status == FSM_FAILED ||
           status == FSM_CANCELLED;
}
