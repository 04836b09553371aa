/*
 * risk.h - a per-event bot-likeness score, 0..1, from the user's window.
 *
 * Four sub-scores, each 0 for what real shoppers do and rising to 1 for
 * what they do not, combined by noisy-or (docs/FEATURES.md, "Risk score"):
 *
 *   velocity    the user's recent pace (actions per minute over the
 *               session's last events) against this partition's population
 *               of session paces, as a robust z-score;
 *   regularity  the coefficient of variation of the gaps between those
 *               actions: people pause irregularly, a script does not;
 *   breadth     distinct categories viewed per minute of the session;
 *   checkout    a cart or purchase within 2 s of the view before it, and
 *               add-to-cart bursts (3 or more within a minute).
 *
 * Events at the same millisecond count as one action (a checkout of
 * several items, a bulk favourite). Everything is read from the user's
 * state record (its ring of recent events and session fields): no field of
 * its own per user. The population (itd_risk_t, one per partition, like
 * the state) is a decaying histogram of log session paces, each session
 * counted once (sessions already scoring 0.5 are left out), started
 * from a prior shaped like real shoppers' paces;
 * fixed size, deterministic, snapshotted beside the state.
 *
 * Cost: one look-up of the user (its record is in cache after
 * itd_state_update) and O(ITD_RING) work; no allocation.
 *
 * @thread one pipeline thread owns an itd_risk_t (with its state); no locks.
 */
#ifndef INTENTD_RISK_H
#define INTENTD_RISK_H

#include <stddef.h>
#include <stdio.h>

#include "intentd/err.h"
#include "intentd/event.h"
#include "intentd/state.h"

typedef enum {
        ITD_RISK_VELOCITY = 0,
        ITD_RISK_REGULARITY,
        ITD_RISK_BREADTH,
        ITD_RISK_CHECKOUT,
        ITD_RISK__COUNT
} itd_risk_part_t;

typedef struct itd_risk_s itd_risk_t;

/** @brief A partition's population, holding only the prior (caller owns). */
itd_risk_t *itd_risk_new(void);
void itd_risk_destroy(itd_risk_t *rk);

/** @brief "velocity", "regularity", "breadth", "checkout"; "?" if out of
 * range. */
const char *itd_risk_part_name(itd_risk_part_t part);

/**
 * @brief The risk of ev from its user's window in st.
 *
 * Call right after itd_state_update(st, ev, ...) returned ITD_OK, with
 * applied 1: the window then holds ev, and a session reaching its seventh
 * action joins the population (unless it already scores 0.5). For an event the state did not take (late),
 * pass applied 0: the user's window as it stands is scored and nothing is
 * learned. A user the state does not hold scores 0.
 *
 * @param parts  out (may be NULL): ITD_RISK__COUNT sub-scores, 0..1.
 * @returns the score, 0..1: 1 - prod(1 - parts[i]).
 */
float itd_risk_score(itd_risk_t *rk, const itd_state_t *st,
                     const itd_event_t *ev, int applied, float *parts);

/**
 * @brief The population's median and robust spread (IQR / 1.349) of log
 * actions per minute, and the weight of sessions behind them (prior
 * included, after decay). For reports and tests.
 */
void itd_risk_population(const itd_risk_t *rk, double *median,
                         double *spread, double *weight);

/**
 * @brief Writes the population as one versioned, checksummed snapshot
 * (the same framing as the state's). Writes only.
 * @returns ITD_OK, or ITD_ERR_IO with errstr.
 */
itd_err_t itd_risk_snapshot(const itd_risk_t *rk, FILE *out, char *errstr,
                            size_t errstr_size);

/**
 * @brief Reads exactly one snapshot from in into a new population the
 * caller owns.
 * @param out  gets it (caller owns), NULL on failure.
 * @returns ITD_OK; ITD_ERR_CORRUPT (damaged or truncated),
 * ITD_ERR_INCOMPATIBLE or ITD_ERR_IO with errstr.
 */
itd_err_t itd_risk_restore(FILE *in, itd_risk_t **out, char *errstr,
                           size_t errstr_size);

#endif
