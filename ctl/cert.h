#ifndef CTL_CERT_H_
#define CTL_CERT_H_

/* rotactl cert: the CA and node certificates of secure mode (issue 11).
 * Local only: no server is contacted. */

struct ctl;

/* cert create-ca|create-node ...: 0, CTL_EXIT_ERROR (message printed) or
 * CTL_EXIT_USAGE. */
int ctl_cmd_cert(struct ctl *ctl, int argc, char **argv);

#endif /* CTL_CERT_H_ */
