# Offline access decisions: the user store on flash (users), the pure
# decision (policy) and the controller that ties them to the doors.
