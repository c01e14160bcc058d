/** The sign-in page's one behaviour: saying so when the server turned the key down (`?error=key`). */
const refused = new URLSearchParams(window.location.search).get("error") === "key"
const notice = document.getElementById("refused")
if (notice !== null) notice.hidden = !refused
