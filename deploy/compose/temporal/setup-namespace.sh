#!/bin/sh
# Our namespace, its retention and our search attributes (temporal CLI, admin-tools image).
# Safe to repeat. The search attributes must match workflows/search_attributes.py (ALL):
# tests/deploy checks that they do.
set -eu

: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${RETENTION_DAYS:?}"

until temporal operator cluster health --address "$TEMPORAL_ADDRESS"; do
    echo "waiting for the Temporal frontend at $TEMPORAL_ADDRESS"
    sleep 3
done

# Closed workflows' histories hold personal data: keep them as long as the database does
# (SENDMED_RETENTION_DAYS), no longer.
if temporal operator namespace describe -n "$TEMPORAL_NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
    temporal operator namespace update -n "$TEMPORAL_NAMESPACE" --address "$TEMPORAL_ADDRESS" \
        --retention "${RETENTION_DAYS}d"
else
    temporal operator namespace create -n "$TEMPORAL_NAMESPACE" --address "$TEMPORAL_ADDRESS" \
        --retention "${RETENTION_DAYS}d"
fi

# One attribute per call (the CLI would quietly add only the first of several --name), each
# retried while a namespace created a moment ago is not yet known everywhere.
sa() {
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        temporal operator search-attribute create -n "$TEMPORAL_NAMESPACE" \
            --address "$TEMPORAL_ADDRESS" --name "$1" --type "$2" && return 0
        sleep 3
    done
    return 1
}
sa ReferralStatus Keyword
sa ReferralRoute Keyword
sa LocalAuthority Keyword
sa NextDeadline Datetime
sa NextDeadlineName Keyword
sa CertificateIssued Bool
sa DeadlineBreached Bool
sa DeliveryFailed Bool
sa LocalAuthorityName Keyword
sa BreachedDeadlines KeywordList
sa LatestBreach Datetime
sa ExternalReference Keyword
echo "namespace $TEMPORAL_NAMESPACE ready"
