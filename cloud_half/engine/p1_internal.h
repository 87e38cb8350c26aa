/* duosign: internals shared by the P1 (cloud) engine files. Not installed. */
#ifndef DUOSIGN_P1_INTERNAL_H
#define DUOSIGN_P1_INTERNAL_H

#include "p1.h"

#include "session_ids.h"

#endif
