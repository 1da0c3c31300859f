#ifndef SMTPGATE_CCONNTRACK_SHIM_H
#define SMTPGATE_CCONNTRACK_SHIM_H
#include <stdint.h>
#include <netinet/in.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libmnl/libmnl.h>
#endif
