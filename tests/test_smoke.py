import datetime as dt


async def test_signup_login_whoami_through_gateway(client, new_email):
    account = await client.register(email=new_email, password="correct horse battery staple", birth_date=dt.date(1990, 5, 17))
    assert account.email == new_email
    await client.login(new_email, "correct horse battery staple")
    me = await client.whoami()
    assert me.account.account_id == account.account_id
