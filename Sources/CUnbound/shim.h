#ifndef SMTPGATE_CUNBOUND_SHIM_H
#define SMTPGATE_CUNBOUND_SHIM_H
#include <unbound.h>
#endif
