#!/bin/sh
# SMTPGate - example action_script: one syslog line (facility mail, tag smtpgate-action) per event.
#
# Install:
#   install -d /usr/local/lib/smtpgate
#   install -m 0755 Examples/action-script.sh /usr/local/lib/smtpgate/action-script.sh
# and in /etc/smtpgate/smtpgate.conf:
#   action_script /usr/local/lib/smtpgate/action-script.sh
# Try it by hand, as the set_user account, with the environment smtpgate would give it:
#   runuser -u smtpgate -- env -i FOUND=VIRUS VIRUS_NAME=Win.Test.EICAR_HDB-1 SOURCE_IP=198.51.100.7 \
#       TARGET_IP=192.0.2.25 /usr/local/lib/smtpgate/action-script.sh VIRUS 198.51.100.7 - 192.0.2.25
#   journalctl -t smtpgate-action        (or grep smtpgate-action /var/log/mail.log)
#
# How smtpgate runs it (smtpgate(8), ACTION SCRIPT):
#   - for FOUND=VIRUS (clamd found one), SPAM (spamd's score >= spam_threshold, with spam_action
#     reject or deliver), MAX_HOST (a client refused by max_per_host) and SIZE_LIMIT (a message or
#     its MAIL SIZE= over size_limit), once per event: there is no locking as in smtp-gated;
#   - executed directly (keep the #! line and the execute bit), as the set_user account, in a
#     session of its own, with /dev/null as stdin, stdout and stderr (print nothing: log instead),
#     no other open file, default signal handling, and only the variables below plus
#     PATH=/usr/sbin:/usr/bin:/sbin:/bin;
#   - never waited for by the mail flow: at most max_actions scripts at once, later events queue
#     (64 at most, beyond that they are dropped and logged as action_dropped); after
#     timeout_action seconds the script and everything in its process group get SIGKILL.
#     smtpgate logs how it ended (action ... exit=N) and ignores the status otherwise.
#
# Arguments, in smtp-gated's order: $1 FOUND, $2 SOURCE_IP, $3 IDENT or "-", $4 TARGET_IP.
# Environment (a value smtpgate does not know is empty):
#   PROXY_NAME  FOUND  VIRUS_NAME  SPAM_SCORE (one decimal)  SOURCE_IP SOURCE_PORT (the real client)
#   TARGET_IP TARGET_PORT (its destination)  LOCAL_IP LOCAL_PORT (the proxy's end)  IDENT
#   IDENT_COUNT (0)  HELO  MAIL_FROM (<a@b> as sent, <> for the null sender)  RCPTS_TOTAL  SIZE
#   TRANSACTION  AUTH (0)  SPOOL_NAME (the kept spool file, see spool_leave_on)  LOCK_FILE (empty)
#   LOCK_DURATION (0)  TIME (session start, UTC, "YYYY-MM-DD hh:mm:ss")  UNIXTIME (the same, seconds)
#
# Treat every value as hostile.  HELO and MAIL_FROM are what the client sent: smtpgate writes
# blanks, control bytes, non-ASCII, \ " and % in them as \xHH (as in its log), but $ ` ' ; | & * ( )
# and the like stay as they are.  VIRUS_NAME comes from clamd.  Every value has control characters
# replaced and is at most 512 bytes long, nothing more.  So: quote every expansion ("$HELO"), never
# eval, never build a command line, a file name or a pattern from a value, and check a value's
# form before using it as anything but text (as looks_like_ip does below for SOURCE_IP).

set -u

tag=smtpgate-action

# log PRIORITY TEXT: one line to syslog; "--" so that a TEXT starting with "-" is not an option.
log() {
    logger -t "$tag" -p "mail.$1" -- "$2"
}

# Only the characters of an IPv4 or IPv6 address: safe to hand to other tools as one word.
looks_like_ip() {
    case "$1" in
        '' | *[!0-9A-Fa-f:.]*) return 1 ;;
    esac
    return 0
}

found=${FOUND-}
client=${SOURCE_IP-}
if ! looks_like_ip "$client"; then
    log warning "event ${found} without a usable SOURCE_IP; ignored"
    exit 1
fi

where="client=${client} port=${SOURCE_PORT-} dest=${TARGET_IP-}:${TARGET_PORT-} proxy=${PROXY_NAME-}"
what="helo=${HELO-} from=${MAIL_FROM-} rcpts=${RCPTS_TOTAL-} size=${SIZE-} trans=${TRANSACTION-}"

case "$found" in
    VIRUS)
        log notice "virus ${VIRUS_NAME-} ${where} ${what} spool=${SPOOL_NAME-}" ;;
    SPAM)
        log notice "spam score=${SPAM_SCORE-} ${where} ${what} spool=${SPOOL_NAME-}" ;;
    MAX_HOST)
        log notice "max_per_host reached ${where} session_start=${TIME-}" ;;
    SIZE_LIMIT)
        log notice "size_limit exceeded ${where} ${what}" ;;
    *)
        log warning "unknown event from ${client}; ignored"
        exit 1 ;;
esac

# Acting on the client, for example blocking it at a firewall, needs privileges this script does
# not have (it runs as set_user): hand the checked address to a privileged service instead, and let
# that service check it again.
exit 0
