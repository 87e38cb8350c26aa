/* duosign: internals shared by the P1 (cloud) engine files. Not installed. */
#ifndef DUOSIGN_P1_INTERNAL_H
#define DUOSIGN_P1_INTERNAL_H

#include "p1.h"

#include "session_ids.h"

/* TEST ONLY. 1 if the session's nonce k1 is all zero (never drawn, or wiped
 * after use), else 0 (also for NULL). Lets tests assert that k1 is wiped on
 * every path out of signing; reveals nothing else about k1. */
int duo__p1_sign_nonce_wiped(const duo_p1_sign *s);

#endif
