/* The version every Quokka program reports (-version, the monitor banner). */
#ifndef QUOKKA_UTIL_VERSION_H
#define QUOKKA_UTIL_VERSION_H

#define QUOKKA_VERSION "0.1.0"

#endif
