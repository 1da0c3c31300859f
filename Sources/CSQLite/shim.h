#ifndef SMTPGATE_CSQLITE_SHIM_H
#define SMTPGATE_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
